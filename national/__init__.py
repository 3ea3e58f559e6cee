"""National search: the archives of many regions queried together on Apache Spark.

``query`` turns the regional search's query model into SQL over the archive layout of
``central.archive.schema``; ``search`` runs it (on Spark, or on DuckDB for one machine) and
audits it; ``spark`` builds the session and ``cluster`` starts a standalone cluster from the
pyspark package (tests, benchmark). ``synth`` makes large synthetic archives for the
benchmark. See docs/national.md.
"""
