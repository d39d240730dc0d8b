"""Log-sum-exp, softmax and their relatives: fast, accurate and single-pass."""

from lsearray._reductions import logmeanexp, logsumexp
from lsearray._softmax import log_softmax, softmax

__all__ = ["log_softmax", "logmeanexp", "logsumexp", "softmax"]
