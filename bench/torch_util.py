"""What the PyTorch comparison scripts share: torch on a CUDA device (or a clear skip) and event timing."""


def cuda_torch(script):
    """torch set up for plain FP32 on the GPU, or None after saying why `script` skips."""
    try:
        import torch
    except ImportError:
        print(f"{script}: skipped: PyTorch is not installed")
        return None
    if not torch.cuda.is_available():
        print(f"{script}: skipped: PyTorch sees no CUDA device")
        return None
    torch.backends.cuda.matmul.allow_tf32 = False  # plain FP32, as mixtura computes
    torch.backends.cudnn.allow_tf32 = False
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    return torch


def median_ms(torch, f, iters, warmup=2):
    """Median milliseconds of f() over `iters` runs after `warmup` runs, timed with CUDA events."""
    for _ in range(warmup):
        f()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        f()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return sorted(times)[len(times) // 2]
