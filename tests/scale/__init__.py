"""Scale-out: the same jobs on a distributed executor (dagster-celery on a real Redis broker)."""
