"""The environment Sedna's GlobalManager injects into FederatedLearningJob pods, for tests."""

# What Sedna's GlobalManager injects (sedna.md §1.1 and §1.2).
AGGREGATOR_ENV = {
    "NAMESPACE": "default",
    "WORKER_NAME": "aggworker-x7k2p",
    "JOB_NAME": "surface-defect",
    "AGG_BIND_PORT": "7363",
    "PARTICIPANTS_COUNT": "2",
    "TRANSMITTER": "s3",
    "AGG_DATA_PATH": "s3://sedna/fl/aggregation_data",
    "MODEL_URL": "/home/data/model/model.pth",
    "S3_ENDPOINT_URL": "http://minio.example:9000",
    "ACCESS_KEY_ID": "AKIA-VERY-PRIVATE",
    "SECRET_ACCESS_KEY": "hunter2-secret",
}
TRAINER_ENV = {
    "AGG_PORT": "7363",
    "AGG_IP": "surface-defect-aggregation.default",
    "WORKER_NAME": "trainworker-ab12c",
    "JOB_NAME": "surface-defect",
    "PARTICIPANTS_COUNT": "2",
    "NAMESPACE": "default",
    "MODEL_NAME": "surface-defect-model",
    "DATASET_NAME": "edge1-surface-defect-dataset",
    "LC_SERVER": "http://localhost:9100",
    "TRAIN_DATASET_URL": "/home/data/data/1.txt",
    "DATA_PATH_PREFIX": "/home/data",
}
