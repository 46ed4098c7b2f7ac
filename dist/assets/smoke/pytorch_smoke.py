#!/usr/bin/env python3
"""build-image's PyTorch smoke payload: runs inside the image and prints one JSON line.

It reports versions (Python, torch, CUDA, cuDNN, NCCL), the visible GPUs, GEMM throughput (bf16, tf32, fp16 at
8192^3 on GPU 0; fp32 at a small size on the CPU), pinned host<->device bandwidth, and how long `import torch`
and CUDA initialisation take. Without a GPU it still reports the CPU figures, unless GPUs were required
(--require-gpus N or SMOKE_REQUIRE_GPUS=N): then it prints {"ok": false, "error": ...} and exits 2.

Settings (arguments win over the environment):
  --require-gpus N   SMOKE_REQUIRE_GPUS   fail unless at least N GPUs are visible
  --threads N        SMOKE_THREADS        torch intra-op threads for the CPU GEMM (default: torch's choice)
  --gemm-size N      SMOKE_GEMM_SIZE      GPU GEMM edge (default 8192)
  --cpu-gemm-size N  SMOKE_CPU_GEMM_SIZE  CPU GEMM edge (default 1024)
"""
import argparse
import json
import os
import platform
import sys
import time

MARKER = "build-image/pytorch-smoke"
SCHEMA = 1


def emit(report, code=0):
    # One line, marker first, so the launcher finds it among other output (a custom command, Slurm noise).
    sys.stdout.write(json.dumps(report, separators=(",", ":")) + "\n")
    sys.stdout.flush()
    sys.exit(code)


def env_int(name, default):
    value = os.environ.get(name, "")
    try:
        return int(value) if value.strip() else default
    except ValueError:
        emit({"smoke": MARKER, "schema": SCHEMA, "ok": False, "error": f"{name} must be an integer; got {value!r}"}, 2)


def parse_args():
    p = argparse.ArgumentParser(description="PyTorch smoke test and micro-benchmark")
    p.add_argument("--require-gpus", type=int, default=env_int("SMOKE_REQUIRE_GPUS", 0))
    p.add_argument("--threads", type=int, default=env_int("SMOKE_THREADS", 0))
    p.add_argument("--gemm-size", type=int, default=env_int("SMOKE_GEMM_SIZE", 8192))
    p.add_argument("--cpu-gemm-size", type=int, default=env_int("SMOKE_CPU_GEMM_SIZE", 1024))
    return p.parse_args()


def timed_loop(fn, sync, min_seconds, min_iters, warmup):
    """Runs fn until both min_iters and min_seconds are reached (after warm-up); returns (iterations, seconds)."""
    for _ in range(warmup):
        fn()
    sync()
    iters = 0
    start = time.perf_counter()
    while True:
        fn()
        iters += 1
        if iters >= min_iters:
            sync()
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                return iters, elapsed


def cpu_gemm(torch, n):
    a = torch.randn(n, n, dtype=torch.float32)
    b = torch.randn(n, n, dtype=torch.float32)
    iters, seconds = timed_loop(lambda: torch.mm(a, b), lambda: None, min_seconds=1.0, min_iters=5, warmup=2)
    return 2.0 * n**3 * iters / seconds / 1e9


def gpu_gemm(torch, n, dtype, tf32=False):
    """TFLOP/s of an n^3 matmul on the current GPU, timed with CUDA events after a warm-up."""
    torch.backends.cuda.matmul.allow_tf32 = tf32
    a = torch.randn(n, n, device="cuda", dtype=dtype)
    b = torch.randn(n, n, device="cuda", dtype=dtype)
    for _ in range(5):
        torch.mm(a, b)
    torch.cuda.synchronize()
    # Enough iterations for ~0.5 s at the expected speed, measured once and then reused.
    probe_start, probe_end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    probe_start.record()
    torch.mm(a, b)
    probe_end.record()
    torch.cuda.synchronize()
    one = max(probe_start.elapsed_time(probe_end) / 1000.0, 1e-6)
    iters = max(10, min(1000, int(0.5 / one)))
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        torch.mm(a, b)
    end.record()
    torch.cuda.synchronize()
    seconds = start.elapsed_time(end) / 1000.0
    torch.backends.cuda.matmul.allow_tf32 = False
    del a, b
    torch.cuda.empty_cache()
    return 2.0 * n**3 * iters / seconds / 1e12


def pinned_bandwidth(torch, nbytes=512 * 1024**2, iters=10):
    """GB/s (1e9 bytes) of pinned host->device and device->host copies."""
    host = torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)
    dev = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
    results = {}
    for name, dst, src in (("h2d_gbps", dev, host), ("d2h_gbps", host, dev)):
        for _ in range(2):
            dst.copy_(src, non_blocking=True)
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            dst.copy_(src, non_blocking=True)
        end.record()
        torch.cuda.synchronize()
        results[name] = nbytes * iters / (start.elapsed_time(end) / 1000.0) / 1e9
    del host, dev
    torch.cuda.empty_cache()
    return results


def main():
    args = parse_args()
    report = {
        "smoke": MARKER,
        "schema": SCHEMA,
        "ok": True,
        "python": platform.python_version(),
        "hostname": platform.node(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }
    if args.threads > 0:
        # BLAS libraries read these when torch loads them; torch.set_num_threads alone misses a generic BLAS.
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = str(args.threads)
    started = time.perf_counter()
    try:
        import torch
    except Exception as error:  # noqa: BLE001 - any import failure is the finding
        report.update(ok=False, error=f"import torch failed: {type(error).__name__}: {error}")
        emit(report, 2)
    report["import_torch_seconds"] = time.perf_counter() - started
    report["torch"] = torch.__version__
    report["cuda"] = torch.version.cuda
    report["cudnn"] = None
    report["nccl"] = None
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    report["threads"] = torch.get_num_threads()
    metrics = {}

    started = time.perf_counter()
    available = torch.cuda.is_available()
    count = torch.cuda.device_count() if available else 0
    if count > 0:
        torch.cuda.init()
        torch.zeros(1, device="cuda")
        torch.cuda.synchronize()
        report["cuda_init_seconds"] = time.perf_counter() - started
    else:
        report["cuda_init_seconds"] = None
    report["gpus"] = []
    for i in range(count):
        props = torch.cuda.get_device_properties(i)
        report["gpus"].append(
            {"index": i, "name": props.name, "memory_bytes": props.total_memory, "capability": f"{props.major}.{props.minor}"}
        )
    if args.require_gpus > 0 and count < args.require_gpus:
        why = "torch was built without CUDA" if torch.version.cuda is None else "no CUDA device is visible (driver, --nv, CUDA_VISIBLE_DEVICES?)"
        report.update(ok=False, error=f"{args.require_gpus} GPU(s) requested but {count} visible: {why}")
        emit(report, 2)

    try:
        if torch.backends.cudnn.is_available():
            v = torch.backends.cudnn.version()
            report["cudnn"] = f"{v // 10000}.{v // 100 % 100}.{v % 100}" if v and v >= 10000 else str(v)
    except Exception:  # noqa: BLE001 - versions are best effort
        pass
    try:
        if count > 0:
            report["nccl"] = ".".join(str(x) for x in torch.cuda.nccl.version())
    except Exception:  # noqa: BLE001
        pass

    try:
        metrics["cpu_gemm_fp32_gflops"] = cpu_gemm(torch, args.cpu_gemm_size)
        report["cpu_gemm_size"] = args.cpu_gemm_size
        if count > 0:
            n = args.gemm_size
            report["gemm_size"] = n
            metrics["gemm_bf16_tflops"] = gpu_gemm(torch, n, torch.bfloat16)
            metrics["gemm_tf32_tflops"] = gpu_gemm(torch, n, torch.float32, tf32=True)
            metrics["gemm_fp16_tflops"] = gpu_gemm(torch, n, torch.float16)
            metrics.update(pinned_bandwidth(torch))
    except Exception as error:  # noqa: BLE001
        report.update(ok=False, error=f"benchmark failed: {type(error).__name__}: {error}", metrics=metrics)
        emit(report, 2)
    report["metrics"] = {k: round(v, 3) for k, v in metrics.items()}
    emit(report)


if __name__ == "__main__":
    main()
