"""EDM2's magnitude-preserving UNet with its Precond wrapper, written for Ambient's side-by-side
comparisons (Karras et al. 2024, "Analyzing and Improving the Training Dynamics of Diffusion
Models"). Parameter names equal EDM2's state_dict keys, so that a safetensors checkpoint written
by Ambient loads here and the other way round. Float32, NCHW; PyTorch 1.13 or newer.

    python3 edm2_torch.py count CONFIG.json                        # the learned-parameter count
    python3 edm2_torch.py step CONFIG.json BATCH N [WEIGHTS|-] [OUT.json] [WARMUP] [DEVICE]
        # times N train steps (forward, loss, backward, Adam, two EMAs): images/s, peak memory;
        # DEVICE is cpu (the default: float32) or cuda[:N] (the forward pass under bf16
        # autocast, as a PyTorch user trains on a GPU; cuDNN picks its fastest algorithms)
    python3 edm2_torch.py forward CONFIG.json WEIGHTS INPUTS OUTPUTS
        # D(x; sigma) and the logvar in eval mode; INPUTS holds x [N,C,H,W], sigma [N] and,
        # for a conditional net, labels [N, label_dim]; OUTPUTS gets denoised and logvar

CONFIG.json holds the fields of dev.ambient.model.unet.UNetConfig (imgResolution, ...).
"""
import contextlib
import json
import math
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def normalize(x, dim=None, eps=1e-4):
    dim = list(range(1, x.ndim)) if dim is None else dim
    norm = torch.linalg.vector_norm(x, dim=dim, keepdim=True, dtype=torch.float32)
    return x / (eps + norm * math.sqrt(norm.numel() / x.numel()))


def mp_silu(x):
    return F.silu(x) / 0.596


def mp_sum(a, b, t):
    # under autocast one side can be bf16 (a convolution's output) and the other float32 (a
    # normalisation's), and lerp takes one dtype: the wider; in float32 both .to() are no-ops
    dtype = torch.promote_types(a.dtype, b.dtype)
    return a.to(dtype).lerp(b.to(dtype), t) / math.sqrt((1 - t) ** 2 + t ** 2)


def mp_cat(a, b, t):
    na, nb = a.shape[1], b.shape[1]
    scale = math.sqrt((na + nb) / ((1 - t) ** 2 + t ** 2))
    return torch.cat([a * (scale * (1 - t) / math.sqrt(na)), b * (scale * t / math.sqrt(nb))], dim=1)


class MPFourier(torch.nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.register_buffer("freqs", 2 * math.pi * torch.randn(channels))
        self.register_buffer("phases", 2 * math.pi * torch.rand(channels))

    def forward(self, x):
        return torch.cos(torch.outer(x, self.freqs) + self.phases) * math.sqrt(2)


class MPConv(torch.nn.Module):
    def __init__(self, cin, cout, kernel):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(cout, cin, *kernel))

    def forward(self, x, gain=1.0):
        w = self.weight
        if self.training:
            with torch.no_grad():
                self.weight.copy_(normalize(w))  # forced weight normalisation
        w = normalize(w) * (gain / math.sqrt(w[0].numel()))
        if w.ndim == 2:
            return x @ w.t()
        return F.conv2d(x, w, padding=w.shape[-1] // 2)


class Block(torch.nn.Module):
    def __init__(self, cin, cout, cemb, encoder, resample, attention, cfg):
        super().__init__()
        self.encoder, self.resample, self.cfg = encoder, resample, cfg
        self.heads = cout // cfg["channelsPerHead"] if attention else 0
        self.emb_gain = torch.nn.Parameter(torch.zeros([]))
        self.conv_res0 = MPConv(cout if encoder else cin, cout, [3, 3])
        self.emb_linear = MPConv(cemb, cout, [])
        self.conv_res1 = MPConv(cout, cout, [3, 3])
        self.conv_skip = MPConv(cin, cout, [1, 1]) if cin != cout else None
        self.attn_qkv = MPConv(cout, cout * 3, [1, 1]) if self.heads else None
        self.attn_proj = MPConv(cout, cout, [1, 1]) if self.heads else None

    def forward(self, x, emb):
        if self.resample == "down":
            x = F.avg_pool2d(x, 2)
        elif self.resample == "up":
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        if self.encoder:
            if self.conv_skip is not None:
                x = self.conv_skip(x)
            x = normalize(x, dim=[1])
        y = self.conv_res0(mp_silu(x))
        c = self.emb_linear(emb, gain=self.emb_gain) + 1
        y = mp_silu(y * c[:, :, None, None])
        if self.training and self.cfg["dropout"] > 0:
            y = F.dropout(y, p=self.cfg["dropout"])
        y = self.conv_res1(y)
        if not self.encoder and self.conv_skip is not None:
            x = self.conv_skip(x)
        x = mp_sum(x, y, self.cfg["resBalance"])
        if self.heads:
            n, ch, h, w = x.shape
            y = self.attn_qkv(x).reshape(n, self.heads, -1, 3, h * w)  # channel = head, c, (q|k|v)
            q, k, v = normalize(y, dim=[2]).unbind(3)
            weights = torch.einsum("nhcq,nhck->nhqk", q, k / math.sqrt(q.shape[2])).softmax(dim=3)
            y = torch.einsum("nhqk,nhck->nhcq", weights, v).reshape(n, ch, h, w)
            x = mp_sum(x, self.attn_proj(y), self.cfg["attnBalance"])
        return x.clamp(-self.cfg["clipAct"], self.cfg["clipAct"])


class UNet(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        mc, mult = cfg["modelChannels"], cfg["channelMult"]
        cblock = [mc * m for m in mult]
        cnoise = mc * cfg["channelMultNoise"] if cfg.get("channelMultNoise") else cblock[0]
        cemb = mc * cfg["channelMultEmb"] if cfg.get("channelMultEmb") else max(cblock)
        res0, attn = cfg["imgResolution"], set(cfg["attnResolutions"])
        self.cfg = cfg
        self.out_gain = torch.nn.Parameter(torch.zeros([]))
        self.emb_fourier = MPFourier(cnoise)
        self.emb_noise = MPConv(cnoise, cemb, [])
        self.emb_label = MPConv(cfg["labelDim"], cemb, []) if cfg["labelDim"] else None
        self.enc = torch.nn.ModuleDict()
        cout = cfg["imgChannels"] + 1
        for level, channels in enumerate(cblock):
            res = res0 >> level
            if level == 0:
                self.enc[f"{res}x{res}_conv"] = MPConv(cout, channels, [3, 3])
                cout = channels
            else:
                self.enc[f"{res}x{res}_down"] = Block(cout, cout, cemb, True, "down", False, cfg)
            for idx in range(cfg["numBlocks"]):
                self.enc[f"{res}x{res}_block{idx}"] = Block(cout, channels, cemb, True, "keep", res in attn, cfg)
                cout = channels
        skips = [m.weight.shape[0] if isinstance(m, MPConv) else m.conv_res1.weight.shape[0] for m in self.enc.values()]
        self.dec = torch.nn.ModuleDict()
        for level, channels in reversed(list(enumerate(cblock))):
            res = res0 >> level
            if level == len(cblock) - 1:
                self.dec[f"{res}x{res}_in0"] = Block(cout, cout, cemb, False, "keep", True, cfg)
                self.dec[f"{res}x{res}_in1"] = Block(cout, cout, cemb, False, "keep", False, cfg)
            else:
                self.dec[f"{res}x{res}_up"] = Block(cout, cout, cemb, False, "up", False, cfg)
            for idx in range(cfg["numBlocks"] + 1):
                self.dec[f"{res}x{res}_block{idx}"] = Block(cout + skips.pop(), channels, cemb, False, "keep", res in attn, cfg)
                cout = channels
        self.out_conv = MPConv(cout, cfg["imgChannels"], [3, 3])

    def forward(self, x, noise_labels, class_labels):
        emb = self.emb_noise(self.emb_fourier(noise_labels))
        if self.emb_label is not None:
            emb = mp_sum(emb, self.emb_label(class_labels * math.sqrt(class_labels.shape[1])), self.cfg["labelBalance"])
        emb = mp_silu(emb)
        x = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)
        skips = []
        for name, block in self.enc.items():
            x = block(x) if name.endswith("_conv") else block(x, emb)
            skips.append(x)
        for name, block in self.dec.items():
            if "block" in name:
                x = mp_cat(x, skips.pop(), self.cfg["concatBalance"])
            x = block(x, emb)
        return self.out_conv(x, gain=self.out_gain)


class Precond(torch.nn.Module):
    def __init__(self, cfg, sigma_data=0.5):
        super().__init__()
        self.sigma_data, self.label_dim = sigma_data, cfg["labelDim"]
        self.unet = UNet(cfg)
        self.logvar_fourier = MPFourier(cfg["logvarChannels"])
        self.logvar_linear = MPConv(cfg["logvarChannels"], 1, [])

    def forward(self, x, sigma, class_labels=None, return_logvar=False):
        sigma = sigma.reshape(-1, 1, 1, 1)
        if self.label_dim and class_labels is None:
            class_labels = torch.zeros([x.shape[0], self.label_dim], device=x.device)
        sd2 = self.sigma_data ** 2
        c_skip = sd2 / (sigma ** 2 + sd2)
        c_out = sigma * self.sigma_data / (sigma ** 2 + sd2).sqrt()
        c_in = 1 / (sd2 + sigma ** 2).sqrt()
        c_noise = sigma.flatten().log() / 4
        d = c_skip * x + c_out * self.unet(c_in * x, c_noise, class_labels)
        if return_logvar:
            return d, self.logvar_linear(self.logvar_fourier(c_noise)).reshape(-1, 1, 1, 1)
        return d


def load_safetensors(path):
    """name -> float32 tensor, from a safetensors file (F32, F16 or BF16)."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = np.frombuffer(data[begin:end], dtype={"F32": "<f4", "F16": "<f2", "BF16": "<u2"}[info["dtype"]])
        if info["dtype"] == "BF16":
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        out[name] = torch.from_numpy(raw.astype(np.float32).reshape(info["shape"]))
    return out


def save_safetensors(path, tensors):
    """Writes float32 tensors (name -> tensor) as a safetensors file."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


def load_network(cfg, weights):
    net = Precond(cfg)
    if weights:
        net.load_state_dict(load_safetensors(weights), strict=True)
    return net


def forward(cfg, weights, inputs, outputs):
    net = load_network(cfg, weights).eval()
    data = load_safetensors(inputs)
    with torch.no_grad():
        d, logvar = net(data["x"], data["sigma"], data.get("labels"), return_logvar=True)
    save_safetensors(outputs, {"denoised": d, "logvar": logvar.flatten()})


def power_ema_beta(std, images_after, batch):
    """EDM2's power-function EMA: beta = (1 - batch / n)^(gamma + 1), gamma from std."""
    roots = np.roots([1, 7, 16 - std ** -2, 12 - std ** -2])
    gamma = roots[np.isreal(roots)].real.max()
    return (1 - batch / images_after) ** (gamma + 1)


def train_step_timing(cfg, batch, steps, weights=None, warmup=2, device="cpu"):
    """images/s of the median step. On CUDA the forward pass runs under bf16 autocast (the
    loss, the backward's gradients of float32 parameters, Adam and the EMAs stay float32), and
    each step is timed from an idle GPU to an idle GPU."""
    torch.manual_seed(0)
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    net = load_network(cfg, weights).train().to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.99), eps=1e-8)
    params = [p for p in net.parameters()]
    emas = [[p.detach().clone() for p in params] for _ in (0.05, 0.10)]
    res, ch = cfg["imgResolution"], cfg["imgChannels"]
    images = (torch.randn(batch, ch, res, res) * 0.5).to(dev)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else contextlib.nullcontext
    times = []
    for step in range(steps + warmup):
        if cuda:
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        sigma = (torch.randn(batch, device=dev) * 1.0 - 0.4).exp()
        noisy = images + torch.randn_like(images) * sigma.reshape(-1, 1, 1, 1)
        with autocast():
            denoised, logvar = net(noisy, sigma, return_logvar=True)
        denoised, logvar = denoised.float(), logvar.float()  # no-ops in float32
        weight = (sigma ** 2 + 0.25) / (sigma * 0.5) ** 2
        loss = (weight.reshape(-1, 1, 1, 1) / logvar.exp() * (denoised - images) ** 2 + logvar).sum() / batch
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for p in params:  # EDM2 zeroes non-finite gradients
            torch.nan_to_num(p.grad, nan=0, posinf=0, neginf=0, out=p.grad)
        opt.step()
        with torch.no_grad():
            for ema, std in zip(emas, (0.05, 0.10)):
                beta = power_ema_beta(std, (step + 1) * batch, batch)
                for e, p in zip(ema, params):
                    e.lerp_(p, 1 - beta)
        if cuda:
            torch.cuda.synchronize(dev)
        times.append(time.perf_counter() - t0)
        if not math.isfinite(loss.item()):
            raise SystemExit(f"non-finite loss at step {step}")
    times = sorted(times[warmup:])
    return batch / times[len(times) // 2]


def main():
    command, cfg = sys.argv[1], json.load(open(sys.argv[2]))
    if command == "count":
        net = Precond(cfg)
        print(sum(p.numel() for p in net.parameters()))
    elif command == "step":
        import os
        import resource
        threads = int(os.environ.get("OMP_NUM_THREADS", "2"))
        torch.set_num_threads(threads)
        weights = sys.argv[5] if len(sys.argv) > 5 and sys.argv[5] != "-" else None
        warmup = int(sys.argv[7]) if len(sys.argv) > 7 else 2
        device = torch.device(sys.argv[8] if len(sys.argv) > 8 else "cpu")
        if device.type == "cuda":
            if not torch.cuda.is_available():
                raise SystemExit(f"edm2_torch.py step: {device} asked for, but this PyTorch ({torch.__version__}) sees no CUDA device")
            if not torch.cuda.is_bf16_supported():
                raise SystemExit(f"edm2_torch.py step: {torch.cuda.get_device_name(device)} does not support bf16 autocast")
            torch.backends.cudnn.benchmark = True  # the fastest convolution algorithms, picked during the warm-up
        elif device.type != "cpu":
            raise SystemExit(f"edm2_torch.py step: device {device} is neither cpu nor cuda[:N]")
        rate = train_step_timing(cfg, int(sys.argv[3]), int(sys.argv[4]), weights, warmup, str(device))
        result = {"images_per_s": rate, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "torch": torch.__version__, "threads": threads,
                  "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
                  "device": str(device), "autocast_dtype": None}
        if device.type == "cuda":
            result.update({"device_name": torch.cuda.get_device_name(device), "autocast_dtype": "bfloat16",
                           "cudnn_benchmark": True, "cuda_runtime": torch.version.cuda,
                           "gpu_peak_allocated_mb": torch.cuda.max_memory_allocated(device) / 2 ** 20,
                           "gpu_peak_reserved_mb": torch.cuda.max_memory_reserved(device) / 2 ** 20})
        if len(sys.argv) > 6:
            with open(sys.argv[6], "w") as f:
                json.dump(result, f)
        print(f"{rate:.2f} images/s on {result.get('device_name', device)}, peak {result['peak_rss_mb']:.0f} MB")
    elif command == "forward":
        torch.set_num_threads(int(__import__("os").environ.get("OMP_NUM_THREADS", "2")))
        forward(cfg, sys.argv[3], sys.argv[4], sys.argv[5])
    else:
        raise SystemExit("usage: edm2_torch.py count|step|forward CONFIG.json ...")


if __name__ == "__main__":
    main()
