"""The kernel cases of `./ambient bench kernels --vs-torch`, run in PyTorch on the same machine.

Usage: python3 torch_kernels.py CASES.json OUT.json
CASES.json is a list of {"op", "shape"} objects (the names and shapes Ambient's JSON uses);
OUT.json receives {"torch": version, "threads": n, "blas": library, "cases": [{"op", "shape",
"torch_ms"} or {"op", "shape", "skipped": reason}]}. Each case is the same computation
written the way an EDM2 training step in PyTorch eager mode does it, float32, and its result
is checked against a float64 recomputation before it is timed. Times are medians over
repetitions after a warm-up. The caller sets the thread count (OMP_NUM_THREADS) and the
OpenBLAS core type for this process alone.
"""
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

SIGMA_DATA = 0.5


def loaded_blas():
    """The BLAS shared library this process mapped (Debian's torch calls the system BLAS)."""
    try:
        with open("/proc/self/maps") as maps:
            names = {line.split()[-1] for line in maps if "blas" in line.lower() and "/" in line}
        return sorted(os.path.realpath(n) for n in names)
    except OSError:
        return []


def median_ms(fn, min_seconds=1.0, min_runs=5):
    for _ in range(2):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
        if len(times) > 2000:
            break
    times.sort()
    return times[len(times) // 2]


def check(name, got, want, rtol=1e-4, atol=1e-4):
    err = (got.double() - want).abs()
    bound = atol + rtol * want.abs()
    if not bool((err <= bound).all()):
        raise AssertionError(f"{name}: PyTorch result differs from the float64 recomputation "
                             f"(max error {float(err.max()):.3g})")


def dims(shape):
    return [int(d) for d in shape.split("x")]


def case(op, shape):
    """Returns a zero-argument function that runs the op once (after checking it)."""
    g = torch.Generator().manual_seed(1)
    rand = lambda *s: torch.rand(*s, generator=g) * 2 - 1

    if op == "gemm":
        m, n, k = dims(shape)
        a, b = rand(m, k), rand(k, n)
        c = torch.empty(m, n)
        check(op, torch.mm(a, b, out=c), a.double() @ b.double(), atol=1e-3)
        return lambda: torch.mm(a, b, out=c)

    if op.startswith("conv3x3"):
        n, h, w, cin, cout = dims(shape)
        best = None
        for fmt in (torch.contiguous_format, torch.channels_last):
            x = rand(n, cin, h, w).contiguous(memory_format=fmt)
            wt = rand(cout, cin, 3, 3).contiguous(memory_format=fmt)
            dy = rand(n, cout, h, w).contiguous(memory_format=fmt)
            if op == "conv3x3_forward":
                fn = lambda x=x, wt=wt: F.conv2d(x, wt, padding=1)
                check(op, fn()[:1], F.conv2d(x[:1].double(), wt.double(), padding=1), atol=1e-3)
            else:
                mask = [op == "conv3x3_backward_input", op == "conv3x3_backward_weight", False]
                fn = lambda x=x, wt=wt, dy=dy, mask=mask: torch.ops.aten.convolution_backward(
                    dy, x, wt, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, mask)
                got = fn()[0 if mask[0] else 1]
                xd, wd = x.double().requires_grad_(), wt.double().requires_grad_()
                F.conv2d(xd, wd, padding=1).backward(dy.double())
                check(op, got, xd.grad if mask[0] else wd.grad, atol=1e-2)
            ms = median_ms(fn)
            best = ms if best is None else min(best, ms)
        return best  # already timed: the faster of the two memory formats

    if op.startswith("attention"):
        n, heads, length, d = dims(shape)
        q, k, v = (F.normalize(rand(n * heads, length, d), dim=-1) * math.sqrt(d) for _ in range(3))

        def forward(q, k, v):
            weights = torch.softmax(torch.bmm(q, k.transpose(1, 2)) / math.sqrt(d), dim=-1)
            return torch.bmm(weights, v)

        check(op, forward(q, k, v), forward(q.double(), k.double(), v.double()))
        if op == "attention_forward":
            return lambda: forward(q, k, v)
        qg, kg, vg = (t.clone().requires_grad_() for t in (q, k, v))
        dout = rand(n * heads, length, d)
        out = forward(qg, kg, vg)
        return lambda: torch.autograd.grad(out, (qg, kg, vg), dout, retain_graph=True)

    if op in ("mp_silu_forward", "mp_silu_backward", "mp_sum_forward", "mp_sum_backward",
              "clip_forward", "dropout_forward"):
        x, y = rand(*dims(shape)) * 3, rand(*dims(shape))
        if op == "mp_silu_forward":
            check(op, F.silu(x) / 0.596, x.double() * torch.sigmoid(x.double()) / 0.596)
            return lambda: F.silu(x) / 0.596
        if op == "mp_silu_backward":
            return lambda: torch.ops.aten.silu_backward(y, x) / 0.596
        if op == "mp_sum_forward":
            return lambda: x.lerp(y, 0.3) / math.sqrt(0.7 ** 2 + 0.3 ** 2)
        if op == "mp_sum_backward":
            s = math.sqrt(0.7 ** 2 + 0.3 ** 2)
            return lambda: (y * (0.7 / s), y * (0.3 / s))
        if op == "clip_forward":
            return lambda: x.clamp(-256, 256)
        return lambda: F.dropout(x, 0.1, training=True)

    if op.startswith("pixel_norm"):
        x = rand(*dims(shape)) * 3
        c = x.shape[-1]
        normalize = lambda t: t / (1e-4 + torch.linalg.vector_norm(t, dim=-1, keepdim=True) * math.sqrt(1 / c))
        check(op, normalize(x), normalize(x.double()))
        if op == "pixel_norm_forward":
            return lambda: normalize(x)
        xg = x.clone().requires_grad_()
        out, dy = normalize(xg), rand(*dims(shape))
        return lambda: torch.autograd.grad(out, xg, dy, retain_graph=True)

    if op in ("ambient_loss", "ambient_noising"):
        n, h, w, c = dims(shape)
        x0, x = rand(n, h, w, c), rand(n, h, w, c)
        sigma_t = torch.exp(torch.randn(n, generator=g) * 1.2 - 1.2) + 0.05
        sigma_tn = sigma_t * 0.5 * torch.rand(n, generator=g)
        s_t, s_tn = sigma_t.view(-1, 1, 1, 1), sigma_tn.view(-1, 1, 1, 1)
        if op == "ambient_noising":
            def noising():
                z, eps = torch.randn(x.shape), torch.randn(x.shape)
                x_tn = x + s_tn * z
                return x_tn, x_tn + (s_t ** 2 - s_tn ** 2).sqrt() * eps
            return noising
        x_tn = x + s_tn * rand(n, h, w, c)
        x_t = x_tn + (s_t ** 2 - s_tn ** 2).sqrt() * rand(n, h, w, c)
        pred = x0.clone().requires_grad_()

        def loss_and_grad():
            r = s_tn ** 2 / s_t ** 2
            weight = (s_t ** 2 + SIGMA_DATA ** 2) / (s_t * SIGMA_DATA) ** 2 / (1 - r) ** 2
            x_tn_pred = r * x_t + (1 - r) * pred
            loss = (weight * (x_tn_pred - x_tn) ** 2).sum(dim=(1, 2, 3))
            return torch.autograd.grad(loss.sum() / n, pred)
        return loss_and_grad

    if op in ("adam_step", "ema_update"):
        count = int(shape)
        param = torch.nn.Parameter(rand(count))
        if op == "ema_update":
            ema = param.detach().clone()
            return lambda: ema.lerp_(param.detach(), 1 - 0.999)
        param.grad = rand(count)
        adam = torch.optim.Adam([param], lr=1e-4, betas=(0.9, 0.99), eps=1e-8)
        return adam.step

    if op == "mp_cat_forward":  # shape "NxHxWx(Ca+Cb)"
        head, channels = shape.rsplit("x", 1)
        ca, cb = (int(c) for c in channels.strip("()").split("+"))
        a, b = rand(*dims(head), ca), rand(*dims(head), cb)
        scale = math.sqrt((ca + cb) / (0.5 ** 2 + 0.5 ** 2))
        wa, wb = scale * 0.5 / math.sqrt(ca), scale * 0.5 / math.sqrt(cb)
        return lambda: torch.cat([a * wa, b * wb], dim=-1)
    if op in ("avg_pool2x2_forward", "upsample2x_forward"):
        n, h, w, c = dims(shape)
        x = rand(n, c, h, w).contiguous(memory_format=torch.channels_last)
        if op == "avg_pool2x2_forward":
            return lambda: F.avg_pool2d(x, 2)
        return lambda: F.interpolate(x, scale_factor=2, mode="nearest")
    if op in ("channel_scale_forward", "channel_scale_silu_forward"):
        n, h, w, c = dims(shape)
        x, s = rand(n, h, w, c), rand(n, 1, 1, c)
        if op == "channel_scale_forward":
            return lambda: x * (s + 1)
        # what EDM2 writes: the modulation, then mp_silu, two passes
        return lambda: F.silu(x * (s + 1)) / 0.596
    return None


def main():
    cases_file, out_file = sys.argv[1], sys.argv[2]
    threads = int(os.environ.get("OMP_NUM_THREADS", "2"))
    torch.set_num_threads(threads)
    torch.set_grad_enabled(True)
    results = []
    for item in json.load(open(cases_file)):
        op, shape = item["op"], item["shape"]
        try:
            fn = case(op, shape)
            if fn is None:
                results.append({"op": op, "shape": shape, "skipped": "no PyTorch counterpart written"})
                continue
            ms = fn if isinstance(fn, float) else median_ms(fn)
            results.append({"op": op, "shape": shape, "torch_ms": round(ms, 4)})
            print(f"torch {op:24s} {shape:18s} {ms:9.3f} ms", flush=True)
        except Exception as e:  # report, never hide, a case that could not run
            results.append({"op": op, "shape": shape, "skipped": f"{type(e).__name__}: {e}"})
            print(f"torch {op:24s} {shape:18s} skipped: {e}", flush=True)
    info = {"torch": torch.__version__, "threads": torch.get_num_threads(), "blas": loaded_blas(),
            "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"), "cases": results}
    with open(out_file, "w") as f:
        json.dump(info, f, indent=2)


if __name__ == "__main__":
    main()
