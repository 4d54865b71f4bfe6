"""The S3 transmitter (``TRANSMITTER=s3``): model payloads through S3, the socket for control only.

With Sedna's s3 transmitter the aggregator puts each trainer's copy of the global
model, and each trainer its update, as one object in the job's folder under
``AGG_DATA_PATH``; the socket.io message that follows (Plato's ``payload_done`` /
``client_payload_done``) carries only the object's name. The reader deletes the
object once it has it; the aggregator sweeps what a lost trainer left behind at
start and at the end of the job. With ``ws`` (the default) nothing here is used.

Modules: ``folder`` (where the objects live, which names are allowed),
``store`` (put, take and sweep through :mod:`plato_sedna.storage.s3`),
``startup`` (checks at start), ``server`` and ``client`` (the wiring into Plato).
"""
