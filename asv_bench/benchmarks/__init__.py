"""asv benchmark suite for lsearray: logsumexp, softmax, log_softmax, logmeanexp and the relatives."""
