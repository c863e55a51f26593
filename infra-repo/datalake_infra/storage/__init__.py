"""The stateful data stack: the data key, the zone buckets, the access-log bucket and the alarm topic."""
