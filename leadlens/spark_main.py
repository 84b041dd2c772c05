"""Entry point for `spark-submit`: the `leadlens` CLI run as a Spark application.

    spark-submit --master yarn --deploy-mode client leadlens/spark_main.py \\
        score --engine spark --data hdfs:///crm/2026-06-30 --out hdfs:///scores/2026-06-30

Under spark-submit the master, memory and other Spark settings come from spark-submit, not
from the `spark` section of the config (`core.spark_session.spark_session`).
"""

from leadlens.cli import main

if __name__ == "__main__":
    main()
