"""Mission Karmayogi MoU reporting pipeline: the domain logic.

Plain Python, importable without Airflow: the DAGs in ``dags/``, the headless
command (``python -m mou_etl``) and the tests all call the same functions.
"""

__version__ = "0.1.0"
