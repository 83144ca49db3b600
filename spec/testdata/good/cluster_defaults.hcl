# Every cluster attribute has a default.
cluster {}
