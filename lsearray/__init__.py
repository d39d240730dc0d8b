"""Log-sum-exp, softmax and their relatives: fast, accurate and single-pass."""

import importlib.metadata as _metadata

from lsearray._difference import log1mexp, logdiffexp
from lsearray._einsum import logeinsumexp
from lsearray._executors.numpy import build_info
from lsearray._matmul import logmatmulexp
from lsearray._online import OnlineLogSumExp
from lsearray._pairwise import logaddexp
from lsearray._reductions import logmeanexp, logsumexp
from lsearray._sampling import categorical, gumbel_softmax, gumbel_topk
from lsearray._scan import logcumsumexp
from lsearray._segment import segment_log_softmax, segment_logsumexp, segment_softmax
from lsearray._softaverage import OnlineSoftmaxAverage, softmax_average
from lsearray._softmax import log_softmax, softmax

try:
    __version__ = _metadata.version("lsearray")
except _metadata.PackageNotFoundError:  # imported from a source tree that is not installed
    __version__ = "unknown"
del _metadata

__all__ = [
    "OnlineLogSumExp", "OnlineSoftmaxAverage", "__version__", "build_info", "categorical", "gumbel_softmax", "gumbel_topk",
    "log1mexp", "log_softmax", "logaddexp", "logcumsumexp", "logdiffexp", "logeinsumexp", "logmatmulexp", "logmeanexp",
    "logsumexp", "segment_log_softmax", "segment_logsumexp", "segment_softmax", "softmax", "softmax_average",
]
