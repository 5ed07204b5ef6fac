#!/usr/bin/python3
"""Float32 reference forward pass of the DeepSeek MLA + MoE family, written from DESIGN.md §3.

It is an independent check of the C++ engine: attention is computed in the naive form (k_nope
and v are expanded from kv_b for every position, then ordinary multi-head attention), not in
the absorbed latent form the engine uses. Checkpoints are read straight from the Hugging Face
layout (config.json, safetensors, optional model.safetensors.index.json); FP8 codes stay uint8
and are decoded by the e4m3fn definition, since torch 1.13 has no float8 dtype.

    /usr/bin/python3 tools/reference_model.py --model DIR [--golden FILE]

prints, for every prompt in DIR/golden.safetensors (or FILE), the worst
max|logits - golden| / std(golden) over its positions.
"""
import argparse
import json
import math
import os
import struct
import sys

import torch

DTYPE_SIZES = {"F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "I32": 4}


# ---------------------------------------------------------------------------------------------
# safetensors: 8-byte little-endian header length, JSON header, then the data section.

def read_safetensors(path):
    """Returns (tensors, metadata): tensors maps name -> (dtype, shape, raw uint8 tensor)."""
    with open(path, "rb") as f:
        blob = bytearray(f.read())
    header_len = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + header_len])
    data = torch.frombuffer(blob, dtype=torch.uint8)[8 + header_len:]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        tensors[name] = (info["dtype"], info["shape"], data[begin:end])
    return tensors, header.get("__metadata__", {})


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, dtype, shape, raw bytes) written in that order."""
    header, offset = {}, 0
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        assert len(raw) == math.prod(shape) * DTYPE_SIZES[dtype], name
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # data section starts 8-byte aligned, as Hugging Face writes it
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, _, _, raw in tensors:
            f.write(raw)


def e4m3fn_table():
    """float32 value of every FP8 e4m3fn code: bias 7, subnormals, no infinities, NaN at 0x7F/0xFF."""
    values = []
    for code in range(256):
        sign = -1.0 if code & 0x80 else 1.0
        exponent, mantissa = (code >> 3) & 0xF, code & 0x7
        if exponent == 0xF and mantissa == 0x7:
            values.append(float("nan"))
        elif exponent == 0:
            values.append(sign * mantissa / 8.0 * 2.0 ** -6)
        else:
            values.append(sign * (1.0 + mantissa / 8.0) * 2.0 ** (exponent - 7))
    return torch.tensor(values, dtype=torch.float32)


E4M3FN = e4m3fn_table()


def to_tensor(dtype, shape, raw):
    """Stored bytes as a torch tensor: float32 for every float dtype, int32 for I32."""
    if dtype == "F32":
        return raw.clone().view(torch.float32).reshape(shape)
    if dtype == "BF16":  # the upper half of a float32
        bits = raw.clone().view(torch.int16).to(torch.int32) & 0xFFFF
        return (bits << 16).view(torch.float32).reshape(shape)
    if dtype == "F16":
        return raw.clone().view(torch.float16).float().reshape(shape)
    if dtype == "F8_E4M3":
        return E4M3FN[raw.long()].reshape(shape)
    if dtype == "I32":
        return raw.clone().view(torch.int32).reshape(shape)
    raise ValueError(f"unsupported dtype {dtype}")


class Checkpoint:
    """All tensors of a model directory, single file or sharded through the index."""

    def __init__(self, model_dir):
        index_path = os.path.join(model_dir, "model.safetensors.index.json")
        if os.path.exists(index_path):
            with open(index_path) as f:
                shards = sorted(set(json.load(f)["weight_map"].values()))
        else:
            shards = ["model.safetensors"]
        self.tensors = {}
        for shard in shards:
            self.tensors.update(read_safetensors(os.path.join(model_dir, shard))[0])

    def has(self, name):
        return name in self.tensors

    def tensor(self, name):
        return to_tensor(*self.tensors[name])

    def linear_weight(self, prefix, block):
        """Weight of a linear layer as float32 [out, in]; FP8 is dequantized with its block scales:
        W[i][j] = e4m3(q[i][j]) * scale_inv[i // block][j // block] (partial blocks included)."""
        weight = self.tensor(prefix + ".weight")
        if self.tensors[prefix + ".weight"][0] != "F8_E4M3":
            return weight
        scale_inv = self.tensor(prefix + ".weight_scale_inv")
        out_dim, in_dim = weight.shape
        scales = scale_inv.repeat_interleave(block, 0)[:out_dim].repeat_interleave(block, 1)[:, :in_dim]
        return weight * scales


# ---------------------------------------------------------------------------------------------
# The model (DESIGN.md §3).

def rms_norm(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def yarn_m(mscale, factor):
    return 0.1 * mscale * math.log(factor) + 1.0


class Rope:
    """Interleaved-pair rotary embedding with optional YaRN frequency scaling."""

    def __init__(self, config):
        d = config["qk_rope_head_dim"]
        theta = config.get("rope_theta", 10000.0)
        scaling = config.get("rope_scaling")
        freqs = 1.0 / theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
        self.magnitude, self.m = 1.0, 1.0
        if scaling and scaling.get("factor", 1.0) > 1.0:
            kind = scaling.get("type", scaling.get("rope_type"))
            assert kind == "yarn", f"rope_scaling {kind} is not supported"
            factor = scaling["factor"]
            orig = scaling.get("original_max_position_embeddings", 4096)

            def correction_dim(rotations):
                return d * math.log(orig / (rotations * 2 * math.pi)) / (2 * math.log(theta))

            low = max(math.floor(correction_dim(scaling.get("beta_fast", 32))), 0)
            high = min(math.ceil(correction_dim(scaling.get("beta_slow", 1))), d - 1)
            if high == low:
                high = low + 0.001
            ramp = ((torch.arange(d // 2, dtype=torch.float64) - low) / (high - low)).clamp(0, 1)
            freqs = freqs / factor * ramp + freqs * (1 - ramp)
            mscale, mscale_all_dim = scaling.get("mscale", 1.0), scaling.get("mscale_all_dim", 0.0)
            self.m = yarn_m(mscale_all_dim, factor)
            if mscale != mscale_all_dim:
                self.magnitude = yarn_m(mscale, factor) / yarn_m(mscale_all_dim, factor)
        self.freqs = freqs.float()

    def __call__(self, x, positions):
        """x [T, ..., d]: rotates the pairs (x[2i], x[2i+1]) by angle position * freq_i."""
        angles = positions.float()[:, None] * self.freqs[None, :]  # [T, d/2]
        shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (angles.shape[1],)
        cos = (angles.cos() * self.magnitude).reshape(shape)
        sin = (angles.sin() * self.magnitude).reshape(shape)
        a, b = x[..., 0::2], x[..., 1::2]
        return torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(-2)


def is_moe_layer(config, layer):
    """Dense MLP below first_k_dense_replace; from there on MoE every moe_layer_freq layers."""
    return ((config.get("n_routed_experts") or 0) > 0 and layer >= config.get("first_k_dense_replace", 0)
            and layer % config.get("moe_layer_freq", 1) == 0)


def kth_gap(values, k):
    """Smallest gap, over rows, between the k-th and the (k+1)-th largest value."""
    ordered = values.sort(dim=-1, descending=True)[0]
    return (ordered[:, k - 1] - ordered[:, k]).min().item() if values.shape[-1] > k else math.inf


class Model:
    def __init__(self, model_dir):
        with open(os.path.join(model_dir, "config.json")) as f:
            self.config = json.load(f)
        self.ckpt = Checkpoint(model_dir)
        quant = self.config.get("quantization_config") or {}
        self.block = (quant.get("weight_block_size") or [128, 128])[0]
        self.rope = Rope(self.config)
        self.eps = self.config.get("rms_norm_eps", 1e-6)
        # Per routing call, the smallest gap between a kept and a dropped group's score and
        # between a chosen and a rejected expert's: how near the routing came to a tie.
        self.routing_margins = []

    def linear(self, prefix, x):
        return x @ self.ckpt.linear_weight(prefix, self.block).t()

    def norm(self, name, x):
        return rms_norm(x, self.ckpt.tensor(name), self.eps)

    def attention(self, p, x, positions):
        """Naive MLA: expand k_nope and v from kv_b for every position; causal softmax."""
        c = self.config
        heads, nope, rope_dim, v_dim = (c["num_attention_heads"], c["qk_nope_head_dim"],
                                        c["qk_rope_head_dim"], c["v_head_dim"])
        kv_rank, T = c["kv_lora_rank"], x.shape[0]
        if c.get("q_lora_rank"):
            q = self.linear(p + "q_b_proj", self.norm(p + "q_a_layernorm.weight", self.linear(p + "q_a_proj", x)))
        else:
            q = self.linear(p + "q_proj", x)
        q = q.view(T, heads, nope + rope_dim)
        q_nope, q_pe = q[..., :nope], self.rope(q[..., nope:], positions)

        kv = self.linear(p + "kv_a_proj_with_mqa", x)
        latent, k_pe = kv[:, :kv_rank], self.rope(kv[:, kv_rank:], positions)
        kv = self.linear(p + "kv_b_proj", self.norm(p + "kv_a_layernorm.weight", latent))
        kv = kv.view(T, heads, nope + v_dim)
        k_nope, v = kv[..., :nope], kv[..., nope:]

        query = torch.cat([q_nope, q_pe], dim=-1)
        key = torch.cat([k_nope, k_pe[:, None, :].expand(T, heads, rope_dim)], dim=-1)
        softmax_scale = (nope + rope_dim) ** -0.5 * self.rope.m ** 2
        scores = torch.einsum("shd,thd->hst", query, key) * softmax_scale
        future = torch.ones(T, T, dtype=torch.bool).triu(1)
        probs = scores.masked_fill(future, float("-inf")).softmax(dim=-1)
        out = torch.einsum("hst,thd->shd", probs, v).reshape(T, heads * v_dim)
        return self.linear(p + "o_proj", out)

    def mlp(self, p, x):
        gate = self.linear(p + "gate_proj", x)
        return self.linear(p + "down_proj", torch.nn.functional.silu(gate) * self.linear(p + "up_proj", x))

    def route(self, p, x):
        """Returns expert ids [T, k] and their weights [T, k]."""
        c = self.config
        n, k = c["n_routed_experts"], c["num_experts_per_tok"]
        method = c.get("topk_method", "noaux_tc" if c["model_type"] == "deepseek_v3" else "greedy")
        scoring = c.get("scoring_func", "sigmoid" if c["model_type"] == "deepseek_v3" else "softmax")
        logits = self.linear(p + "gate", x)
        scores = logits.sigmoid() if scoring == "sigmoid" else logits.softmax(dim=-1)
        choice = scores.clone()
        if method == "noaux_tc":
            choice = choice + self.ckpt.tensor(p + "gate.e_score_correction_bias")
        n_group = c.get("n_group") or 1
        if method != "greedy" and n_group > 1:
            grouped = choice.view(-1, n_group, n // n_group)
            if method == "noaux_tc":
                group_score = grouped.topk(2, dim=-1)[0].sum(-1)
            else:
                group_score = grouped.max(dim=-1)[0]
            kept = group_score.topk(c["topk_group"], dim=-1)[1]
            self.routing_margins.append(kth_gap(group_score, c["topk_group"]))
            dropped = torch.ones_like(group_score, dtype=torch.bool).scatter(1, kept, False)
            choice = grouped.masked_fill(dropped[..., None], float("-inf")).view(-1, n)
        ids = choice.topk(k, dim=-1)[1]
        self.routing_margins.append(kth_gap(choice, k))
        weights = scores.gather(1, ids)
        if c.get("norm_topk_prob", False):
            weights = weights / weights.sum(dim=-1, keepdim=True)
        return ids, weights * c.get("routed_scaling_factor", 1.0)

    def moe(self, p, x):
        ids, weights = self.route(p, x)
        out = torch.zeros_like(x)
        for e in range(self.config["n_routed_experts"]):
            token, slot = (ids == e).nonzero(as_tuple=True)
            if len(token):
                out[token] += self.mlp(f"{p}experts.{e}.", x[token]) * weights[token, slot, None]
        if (self.config.get("n_shared_experts") or 0) > 0:
            out = out + self.mlp(p + "shared_experts.", x)
        return out

    def forward(self, tokens):
        """Teacher-forced logits [T, vocab] of one sequence starting at position 0."""
        tokens = torch.as_tensor(tokens, dtype=torch.long)
        positions = torch.arange(len(tokens))
        h = self.ckpt.tensor("model.embed_tokens.weight")[tokens]
        for layer in range(self.config["num_hidden_layers"]):  # layers beyond are MTP: skipped
            p = f"model.layers.{layer}."
            h = h + self.attention(p + "self_attn.", self.norm(p + "input_layernorm.weight", h), positions)
            x = self.norm(p + "post_attention_layernorm.weight", h)
            h = h + (self.moe(p + "mlp.", x) if is_moe_layer(self.config, layer) else self.mlp(p + "mlp.", x))
        head = "lm_head" if self.ckpt.has("lm_head.weight") else "model.embed_tokens"
        return self.linear(head, self.norm("model.norm.weight", h))


def worst_ratio(logits, expected):
    """max over positions of max|logits - expected| / std(expected) (std over the vocabulary)."""
    diff = (logits - expected).abs().max(dim=-1)[0]
    return (diff / expected.std(dim=-1, unbiased=False)).max().item()


def check_golden(model, golden_path):
    golden, _ = read_safetensors(golden_path)
    worst, i = 0.0, 0
    while f"tokens_{i}" in golden:
        tokens = to_tensor(*golden[f"tokens_{i}"])
        expected = to_tensor(*golden[f"logits_{i}"])
        ratio = worst_ratio(model.forward(tokens), expected)
        print(f"  prompt {i} ({len(tokens)} tokens): worst max|diff|/std = {ratio:.2e}")
        worst, i = max(worst, ratio), i + 1
    return worst


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--golden", help="default: MODEL/golden.safetensors")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with torch.no_grad():
        worst = check_golden(Model(args.model), args.golden or os.path.join(args.model, "golden.safetensors"))
    print(f"{args.model}: worst max|diff|/std = {worst:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
