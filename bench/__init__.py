"""SharpRay benchmarks: where the node stands against its peers and against the hardware.

``python -m bench --out bench/out [--smoke]`` runs every section side by side in one run and
writes ``report.json``, ``table.md`` and PNG plots. The sections (see ``bench/README.md``):

* ``env``: the machine (CPU, load, versions), its matrix-multiply peak and the disk's fsync
  bandwidth, measured in the same run as everything else;
* ``ingest``: C-STORE into SharpRay, dcmtk ``storescp`` and Orthanc (images/s, MB/s), and C-STORE
  SCU: SharpRay's dispatcher sending vs dcmtk ``storescu``;
* ``inference``: ONNX Runtime vs PyTorch eager on the same weights, FLOPs and fraction of peak;
* ``e2e``: latency from the acknowledged C-STORE to the results stored in Orthanc, throughput
  and queue depth with 1, 2 and 4 concurrent senders;
* ``workers``: jobs/s with 1, 2 and 3 worker processes on one PostgreSQL queue;
* ``dicomweb``: STOW-RS and WADO-RS against the node and Orthanc's DICOMweb plugin;
* ``gpu``: the inference benchmark on CUDA/TensorRT (fp32, fp16 where parity holds), skipped
  without a GPU.

The benchmarks are not tests: CI runs them only in smoke mode (tests/bench/test_bench_smoke.py).
"""
