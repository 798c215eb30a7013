"""Optional bridges to other training frameworks, each behind its own extra and imported only on request.

``lotteryir.integrations.lightning`` (``pip install lotteryir[lightning]``) drives a LightningModule and
its Trainer from :class:`~lotteryir.pruning.IterativeMagnitudePruner`. Importing ``lotteryir`` or this
package imports no framework.
"""
