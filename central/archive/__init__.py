"""The sighting archive: closed days exported as hive-partitioned Parquet."""
