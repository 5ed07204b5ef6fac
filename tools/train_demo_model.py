#!/usr/bin/python3
"""Trains r1's demo model: a small DeepSeek-V3-architecture model that does arithmetic with a
visible chain of thought in R1's format (the task is in tools/demo_task.py).

    /usr/bin/python3 tools/train_demo_model.py --out DIR [--device cpu|cuda] [--minutes M] [--seed S]

The architecture is DeepSeek-V3's, written here from DESIGN.md §3: MLA with a q LoRA and the
latent KV path, interleaved-pair RoPE with YaRN, a dense first layer, then MoE layers with
sigmoid noaux_tc routing over expert groups, a shared expert, and an e_score_correction_bias
trained the aux-loss-free way. The vocabulary is the real one (129280 rows), but only the rows
of tokens the task uses exist as parameters ("used rows"); every other embedding and output row
is exactly zero, so its logit is exactly 0 and the softmax over the full vocabulary has the
closed form logsumexp(used logits, log(N_unused)).

Training stops after --minutes (or --steps) and saves DIR/model.pt (compact: used rows only,
float32; what tools/export_demo_model.py reads) and DIR/resume.pt (optimizer state); started
again with the same DIR it resumes. The learning-rate schedule is laid out over a step count
fixed at the start (from --steps, or from the measured speed and --minutes), printed and stored,
so `--steps N --seed S` reproduces a run. The last part of training sees the weights rounded as
the export stores them (FP8 e4m3 blocks, BF16), so the exported model keeps its accuracy.
"""
import argparse
import math
import os
import random
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import demo_task  # noqa: E402

VOCAB = 129280

# The model's shape, in config.json's names. Hidden 160 keeps the BF16 embedding and head of
# 129280 rows (83 MB) plus the FP8 layers under the 96 MB budget; model.pt (float32, used rows)
# stays under 15 MB.
CONFIG = {
    "vocab_size": VOCAB,
    "hidden_size": 160,
    "intermediate_size": 480,
    "moe_intermediate_size": 128,
    "num_hidden_layers": 5,
    "first_k_dense_replace": 1,
    "num_attention_heads": 4,
    "q_lora_rank": 96,
    "kv_lora_rank": 64,
    "qk_nope_head_dim": 32,
    "qk_rope_head_dim": 16,
    "v_head_dim": 32,
    "n_routed_experts": 8,
    "n_shared_experts": 1,
    "num_experts_per_tok": 2,
    "n_group": 4,
    "topk_group": 2,
    "topk_method": "noaux_tc",
    "scoring_func": "sigmoid",
    "norm_topk_prob": True,
    "routed_scaling_factor": 2.5,
    "rope_theta": 10000.0,
    "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 512,
                     "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0},
    "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-6,
}


# ---------------------------------------------------------------------------------------------
# Export numerics: FP8 e4m3 (the "fn" variant) with one float32 scale per 128x128 block, BF16.

E4M3_MAX = 448.0
BLOCK = 128


def e4m3_round(x):
    """Rounds to the nearest e4m3fn value (ties to even), |x| <= 448 assumed. Normal numbers
    have 3 mantissa bits, so the spacing is 2^(e-3); below 2^-6 the subnormal spacing 2^-9."""
    mag = x.abs()
    exponent = torch.floor(torch.log2(mag.clamp(min=2.0 ** -6)))
    step = torch.pow(2.0, exponent - 3)
    return (torch.round(x / step) * step).clamp(-E4M3_MAX, E4M3_MAX)


def block_scales(w):
    """scale_inv [ceil(out/128), ceil(in/128)]: each block's max |w| maps to 448."""
    out_f, in_f = w.shape
    rows, cols = -(-out_f // BLOCK), -(-in_f // BLOCK)
    padded = torch.zeros(rows * BLOCK, cols * BLOCK, dtype=w.dtype, device=w.device)
    padded[:out_f, :in_f] = w.abs()
    amax = padded.view(rows, BLOCK, cols, BLOCK).amax(dim=(1, 3))
    return torch.where(amax > 0, amax / E4M3_MAX, torch.ones_like(amax))


def expand_blocks(scale, shape):
    return scale.repeat_interleave(BLOCK, 0).repeat_interleave(BLOCK, 1)[:shape[0], :shape[1]]


def fp8_quantize(w):
    """(e4m3 values as float32 [out, in], scale_inv): w ~= values * expand(scale_inv)."""
    scale = block_scales(w.detach())
    return e4m3_round(w / expand_blocks(scale, w.shape)), scale


def fp8_fake_quant(w):
    """The weight as the engine will see it, with the gradient passed straight through."""
    values, scale = fp8_quantize(w)
    return w + (values * expand_blocks(scale, w.shape) - w).detach()


def bf16_fake_quant(w):
    return w + (w.to(torch.bfloat16).float() - w).detach()


# --fp8-activations: the export-rounded phase also rounds activations as the engine's fast
# numerics do for batches (r1 --numerics fast): e4m3 per 1x128 block (scale amax/448) into the
# FP8 projections, bfloat16 into the BF16 ones (router, lm_head). kv_b is applied absorbed in
# float32 by the engine and stays exact. Trained this way the model, like R1, keeps its logits
# under FP8 activations (tools/fp8_activation_drift.py measures the drift).
FP8_ACTIVATIONS = False


def fp8_activation_round(x):
    """x with each 1x128 block of its last dimension rounded as the engine's fast numerics round
    it: e4m3 with the scale amax/448 (a block of zeros keeps scale 1)."""
    blocks = F.pad(x, (0, -x.shape[-1] % BLOCK)).unflatten(-1, (-1, BLOCK))
    amax = blocks.detach().abs().amax(-1, keepdim=True)
    scale = torch.where(amax > 0, amax / E4M3_MAX, torch.ones_like(amax))
    return (e4m3_round(blocks / scale) * scale).flatten(-2)[..., :x.shape[-1]]


def fp8_activation_fake_quant(x):
    if not FP8_ACTIVATIONS:
        return x
    return x + (fp8_activation_round(x) - x).detach()


def bf16_activation_fake_quant(x):
    return bf16_fake_quant(x) if FP8_ACTIVATIONS else x


# ---------------------------------------------------------------------------------------------
# The model.

def rms_norm(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def yarn_m(scale, factor):
    return 0.1 * scale * math.log(factor) + 1.0


def rope_frequencies(cfg):
    """freq_i for the qk_rope_head_dim/2 interleaved pairs, YaRN-corrected (DESIGN.md §3)."""
    d, theta = cfg["qk_rope_head_dim"], cfg["rope_theta"]
    freqs = [theta ** (-2.0 * i / d) for i in range(d // 2)]
    ys = cfg["rope_scaling"]
    factor = ys["factor"]
    if factor <= 1:
        return torch.tensor(freqs, dtype=torch.float64)
    orig = ys["original_max_position_embeddings"]

    def correction_dim(rotations):
        return d * math.log(orig / (rotations * 2 * math.pi)) / (2 * math.log(theta))

    low = max(math.floor(correction_dim(ys["beta_fast"])), 0)
    high = min(math.ceil(correction_dim(ys["beta_slow"])), d - 1)
    if high == low:
        high = low + 0.001
    out = []
    for i, f in enumerate(freqs):
        r = min(max((i - low) / (high - low), 0.0), 1.0)
        out.append(f / factor * r + f * (1 - r))
    return torch.tensor(out, dtype=torch.float64)


def apply_rope(x, cos, sin):
    """x [..., T, d] rotated by interleaved pairs (x[2i], x[2i+1]); cos/sin [T, d/2]."""
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(-2)


class Linear(torch.nn.Module):
    """A bias-free linear layer, [out, in] like the checkpoint, FP8-rounded when asked."""

    def __init__(self, in_f, out_f, std, fp8_input=True):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(out_f, in_f) * std)
        self.fp8_input = fp8_input  # whether the engine's fast numerics feed it FP8 activations

    def forward(self, x, quant=False):
        if quant and self.fp8_input:
            x = fp8_activation_fake_quant(x)
        return F.linear(x, fp8_fake_quant(self.weight) if quant else self.weight)


class Norm(torch.nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x, quant=False):
        return rms_norm(x, bf16_fake_quant(self.weight) if quant else self.weight, self.eps)


class MLP(torch.nn.Module):
    def __init__(self, dim, inter, std, out_std):
        super().__init__()
        self.gate_proj = Linear(dim, inter, std)
        self.up_proj = Linear(dim, inter, std)
        self.down_proj = Linear(inter, dim, out_std)

    def forward(self, x, quant=False):
        return self.down_proj(F.silu(self.gate_proj(x, quant)) * self.up_proj(x, quant), quant)


class Attention(torch.nn.Module):
    """MLA in its naive (expanded) form: k_nope and v come from kv_b for every position. The
    engine uses the absorbed form; both compute the same function."""

    def __init__(self, cfg, std, out_std):
        super().__init__()
        d, h = cfg["hidden_size"], cfg["num_attention_heads"]
        self.h, self.nope, self.rope = h, cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"]
        self.v, self.lora = cfg["v_head_dim"], cfg["kv_lora_rank"]
        eps = cfg["rms_norm_eps"]
        self.q_a_proj = Linear(d, cfg["q_lora_rank"], std)
        self.q_a_layernorm = Norm(cfg["q_lora_rank"], eps)
        self.q_b_proj = Linear(cfg["q_lora_rank"], h * (self.nope + self.rope), std)
        self.kv_a_proj_with_mqa = Linear(d, self.lora + self.rope, std)
        self.kv_a_layernorm = Norm(self.lora, eps)
        self.kv_b_proj = Linear(self.lora, h * (self.nope + self.v), std, fp8_input=False)
        self.o_proj = Linear(h * self.v, d, out_std)
        ys = cfg["rope_scaling"]
        m = yarn_m(ys["mscale_all_dim"], ys["factor"]) if ys["factor"] > 1 else 1.0
        self.scale = (self.nope + self.rope) ** -0.5 * m * m

    def forward(self, x, cos, sin, quant=False):
        B, T, _ = x.shape
        q = self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x, quant), quant), quant)
        q = q.view(B, T, self.h, self.nope + self.rope).transpose(1, 2)        # [B, H, T, nope+rope]
        kv = self.kv_a_proj_with_mqa(x, quant)
        c, k_pe = kv.split([self.lora, self.rope], dim=-1)
        kv = self.kv_b_proj(self.kv_a_layernorm(c, quant), quant)
        kv = kv.view(B, T, self.h, self.nope + self.v).transpose(1, 2)        # [B, H, T, nope+v]
        k_nope, v = kv.split([self.nope, self.v], dim=-1)
        q_nope, q_pe = q.split([self.nope, self.rope], dim=-1)
        q_pe = apply_rope(q_pe, cos, sin)
        k_pe = apply_rope(k_pe.unsqueeze(1), cos, sin).expand(B, self.h, T, self.rope)  # one k_pe for all heads
        qk = torch.cat((q_nope, q_pe), -1)
        k = torch.cat((k_nope, k_pe), -1)
        scores = (qk @ k.transpose(-1, -2)) * self.scale
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
        scores = scores.masked_fill(causal, float("-inf"))
        o = torch.softmax(scores, dim=-1) @ v                                   # [B, H, T, v]
        return self.o_proj(o.transpose(1, 2).reshape(B, T, self.h * self.v), quant)


class MoE(torch.nn.Module):
    """Sigmoid scores, noaux_tc selection over groups with the correction bias, weights from the
    unbiased scores, normalized and scaled; plus the shared expert. Every expert is computed
    densely for every token and weighted by the (mostly zero) routing weights: the same function
    as the sparse one, and much faster at this size than gathering tokens per expert."""

    def __init__(self, cfg, std, out_std):
        super().__init__()
        d, inter, e = cfg["hidden_size"], cfg["moe_intermediate_size"], cfg["n_routed_experts"]
        self.e, self.k = e, cfg["num_experts_per_tok"]
        self.groups, self.topk_groups = cfg["n_group"], cfg["topk_group"]
        self.scaling = cfg["routed_scaling_factor"]
        self.gate = torch.nn.Parameter(torch.randn(e, d) * std)
        self.register_buffer("e_score_correction_bias", torch.zeros(e))
        # Experts stacked: gate/up [E, inter, d], down [E, d, inter] (checkpoint [out, in] each).
        self.w_gate = torch.nn.Parameter(torch.randn(e, inter, d) * std)
        self.w_up = torch.nn.Parameter(torch.randn(e, inter, d) * std)
        self.w_down = torch.nn.Parameter(torch.randn(e, d, inter) * out_std)
        self.shared_experts = MLP(d, inter * cfg["n_shared_experts"], std, out_std)

    def route(self, x, quant=False):
        """(weights [N, E], zero where not chosen; chosen mask [N, E])."""
        gate = bf16_fake_quant(self.gate) if quant else self.gate
        s = torch.sigmoid(F.linear(bf16_activation_fake_quant(x) if quant else x, gate))
        biased = (s + self.e_score_correction_bias).detach()
        per_group = biased.view(-1, self.groups, self.e // self.groups)
        group_score = per_group.topk(2, dim=-1).values.sum(-1)                  # [N, groups]
        best_groups = group_score.topk(self.topk_groups, dim=-1).indices
        group_keep = torch.zeros_like(group_score, dtype=torch.bool).scatter(1, best_groups, True)
        expert_keep = group_keep.repeat_interleave(self.e // self.groups, dim=1)
        chosen_idx = biased.masked_fill(~expert_keep, float("-inf")).topk(self.k, dim=-1).indices
        chosen = torch.zeros_like(s, dtype=torch.bool).scatter(1, chosen_idx, True)
        w = s * chosen
        w = w / w.sum(-1, keepdim=True) * self.scaling
        return w, chosen

    def forward(self, x, quant=False):
        B, T, D = x.shape
        flat = x.reshape(-1, D)
        w, chosen = self.route(flat, quant)
        self.last_load = chosen.sum(0)  # tokens per expert, read by the bias update
        wg, wu, wd = self.w_gate, self.w_up, self.w_down
        if quant:
            wg, wu, wd = (torch.stack([fp8_fake_quant(m) for m in t]) for t in (wg, wu, wd))
        # All experts side by side as one wide MLP: [N, E*inter] activations, each expert's
        # slice scaled by its routing weight before the (stacked) down projection.
        E, I = wg.shape[0], wg.shape[1]
        expert_in = fp8_activation_fake_quant(flat) if quant else flat
        hidden = F.silu(expert_in @ wg.reshape(E * I, D).t()) * (expert_in @ wu.reshape(E * I, D).t())
        if quant:  # each expert's own down input, blocks of 128 within its slice
            hidden = fp8_activation_fake_quant(hidden.view(-1, E, I)).view(-1, E * I)
        hidden = (hidden.view(-1, E, I) * w[:, :, None]).view(-1, E * I)
        routed = hidden @ wd.transpose(1, 2).reshape(E * I, D)
        return (routed + self.shared_experts(flat, quant)).view(B, T, D)


class Layer(torch.nn.Module):
    def __init__(self, cfg, index, std, out_std):
        super().__init__()
        d, eps = cfg["hidden_size"], cfg["rms_norm_eps"]
        self.input_layernorm = Norm(d, eps)
        self.self_attn = Attention(cfg, std, out_std)
        self.post_attention_layernorm = Norm(d, eps)
        if index < cfg["first_k_dense_replace"]:
            self.mlp = MLP(d, cfg["intermediate_size"], std, out_std)
        else:
            self.mlp = MoE(cfg, std, out_std)

    def forward(self, h, cos, sin, quant=False):
        h = h + self.self_attn(self.input_layernorm(h, quant), cos, sin, quant)
        return h + self.mlp(self.post_attention_layernorm(h, quant), quant)


class DemoModel(torch.nn.Module):
    """embed_tokens and lm_head hold only the used rows: row r is vocabulary id used_ids[r]."""

    def __init__(self, cfg, used_ids):
        super().__init__()
        self.cfg = cfg
        d, n = cfg["hidden_size"], cfg["num_hidden_layers"]
        std, out_std = 0.02, 0.02 / math.sqrt(2 * n)
        self.register_buffer("used_ids", torch.tensor(used_ids, dtype=torch.long))
        self.embed_tokens = torch.nn.Parameter(torch.randn(len(used_ids), d) * std)
        self.layers = torch.nn.ModuleList(Layer(cfg, i, std, out_std) for i in range(n))
        self.norm = Norm(d, cfg["rms_norm_eps"])
        self.lm_head = torch.nn.Parameter(torch.randn(len(used_ids), d) * std)
        self.register_buffer("inv_freq", rope_frequencies(cfg).float())

    def hidden(self, rows, quant=False):
        """rows: [B, T] indices into the used rows -> final normed hidden states [B, T, d]."""
        emb = bf16_fake_quant(self.embed_tokens) if quant else self.embed_tokens
        h = emb[rows]
        angles = torch.arange(rows.shape[1], device=rows.device, dtype=torch.float32)[:, None] * self.inv_freq
        cos, sin = angles.cos(), angles.sin()
        for layer in self.layers:
            h = layer(h, cos, sin, quant)
        return self.norm(h, quant)

    def used_logits(self, rows, quant=False):
        head = bf16_fake_quant(self.lm_head) if quant else self.lm_head
        h = self.hidden(rows, quant)
        return (bf16_activation_fake_quant(h) if quant else h) @ head.t()

    def log_partition(self, used_logits):
        """log Σ over all 129280 columns: the unused ones are exactly 0, each adding e^0."""
        n_unused = self.cfg["vocab_size"] - used_logits.shape[-1]
        return torch.logaddexp(torch.logsumexp(used_logits, -1),
                               torch.full_like(used_logits[..., 0], math.log(n_unused)))

    def moe_layers(self):
        return [layer.mlp for layer in self.layers if isinstance(layer.mlp, MoE)]


# ---------------------------------------------------------------------------------------------
# Data.

def used_token_ids(tokenizer):
    """Every token the task can produce, found by encoding each text piece the generator uses
    with every number it can contain. Sorted; the row order of the compact tables."""
    ids = set(tokenizer.encode(demo_task.BOS + demo_task.USER + demo_task.ASSISTANT + "<think>\n"
                               + "</think>\n\n" + demo_task.EOS))
    for n in range(2000):
        ids.update(tokenizer.encode(f" {n}"))
    rng = random.Random(12345)
    for _ in range(20000):
        user, _, assistant = demo_task.sample_problem(rng, off_task_share=0.3)
        ids.update(demo_task.encode_example(tokenizer, user, assistant)[0])
    return sorted(ids)


class Batches(torch.utils.data.IterableDataset):
    """An endless stream of (rows [B, T], loss mask [B, T-1]) batches; with several workers
    the DataLoader takes them round-robin, so the stream depends only on seed and start step."""

    def __init__(self, used_ids, batch, seed, start_step):
        self.used_ids, self.batch, self.seed, self.start_step = used_ids, batch, seed, start_step

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        tokenizer = demo_task.Tokenizer()
        row_of = {t: r for r, t in enumerate(self.used_ids)}
        pad = row_of[tokenizer.added[demo_task.EOS]]
        rng = random.Random(f"{self.seed}/{self.start_step}/{worker}/{workers}")
        while True:
            seqs = []
            for _ in range(self.batch):
                user, _, assistant = demo_task.sample_problem(rng)
                ids, n_prompt = demo_task.encode_example(tokenizer, user, assistant)
                seqs.append(([row_of[t] for t in ids], n_prompt))
            T = max(len(s) for s, _ in seqs)
            rows = torch.full((self.batch, T), pad, dtype=torch.long)
            mask = torch.zeros(self.batch, T - 1)
            for i, (s, n_prompt) in enumerate(seqs):
                rows[i, :len(s)] = torch.tensor(s)
                mask[i, n_prompt - 1:len(s) - 1] = 1  # predict the assistant tokens only
            yield rows, mask


def loss_fn(model, rows, mask, quant=False):
    logits = model.used_logits(rows[:, :-1], quant)
    target = logits.gather(-1, rows[:, 1:, None]).squeeze(-1)
    nll = model.log_partition(logits) - target
    return (nll * mask).sum() / mask.sum()


@torch.no_grad()
def greedy_accuracy(model, tokenizer, problems, device, quant, max_new=120):
    """Greedy decoding (no cache: the sequences are short) of a batch of prompts; returns the
    share whose last \\boxed{} is the right answer, and one sample response."""
    row_of = {int(t): r for r, t in enumerate(model.used_ids.tolist())}
    eos = tokenizer.added[demo_task.EOS]
    prompts = [[row_of[t] for t in tokenizer.encode(demo_task.render_prompt(q))] for q, _ in problems]
    lengths = [len(p) for p in prompts]
    T0 = max(lengths)
    rows = torch.zeros(len(prompts), T0 + max_new, dtype=torch.long, device=device)
    for i, p in enumerate(prompts):
        rows[i, :len(p)] = torch.tensor(p)
    lengths_t = torch.tensor(lengths, device=device)
    done = torch.zeros(len(prompts), dtype=torch.bool, device=device)
    eos_row = row_of[eos]
    for _ in range(max_new):
        T = int(lengths_t.max())
        logits = model.used_logits(rows[:, :T], quant)
        nxt = logits[torch.arange(len(prompts), device=device), lengths_t - 1].argmax(-1)
        nxt = torch.where(done, torch.full_like(nxt, eos_row), nxt)
        rows[torch.arange(len(prompts), device=device), lengths_t] = nxt
        lengths_t = lengths_t + (~done).long()
        done |= nxt == eos_row
        if bool(done.all()):
            break
    used = model.used_ids.tolist()
    correct, sample = 0, None
    for i, (_, answer) in enumerate(problems):
        out = [used[r] for r in rows[i, lengths[i]:int(lengths_t[i])].tolist()]
        text = tokenizer.decode([t for t in out if t != eos])
        boxed = text.rsplit("\\boxed{", 1)[-1].split("}", 1)[0] if "\\boxed{" in text else None
        correct += boxed == answer
        if sample is None:
            sample = text
    return correct / len(problems), sample


# ---------------------------------------------------------------------------------------------
# Training loop.

def update_routing_bias(model, rate):
    """Aux-loss-free balancing: raise the bias of under-loaded experts, lower the over-loaded."""
    with torch.no_grad():
        for moe in model.moe_layers():
            load = moe.last_load.float()
            moe.e_score_correction_bias += rate * torch.sign(load.mean() - load)


def learning_rate(step, total, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def save(model, optimizer, state, out_dir):
    """model.pt: compact weights + config + used ids (float32, what the exporter reads);
    resume.pt: optimizer and loop state. Each written to a temporary name, then renamed."""
    os.makedirs(out_dir, exist_ok=True)
    payload = {"config": model.cfg, "used_ids": model.used_ids.tolist(),
               "model": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "state": state}
    for name, obj in (("model.pt", payload), ("resume.pt", {"optimizer": optimizer.state_dict(), "state": state})):
        torch.save(obj, os.path.join(out_dir, name + ".tmp"))
        os.replace(os.path.join(out_dir, name + ".tmp"), os.path.join(out_dir, name))


def load_model(path, device="cpu"):
    payload = torch.load(os.path.join(path, "model.pt"), map_location="cpu")
    model = DemoModel(payload["config"], payload["used_ids"])
    model.load_state_dict(payload["model"])
    return model.to(device), payload["state"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="checkpoint directory (resumed when it holds one)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--minutes", type=float, default=170.0, help="time budget for this run")
    ap.add_argument("--steps", type=int, default=0, help="total steps (0: fit them to --minutes)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch", type=int, default=0, help="sequences per step (0: 48 on cpu, 512 on cuda)")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--quant-share", type=float, default=0.15, help="final share of steps trained on export-rounded weights")
    ap.add_argument("--fp8-activations", action="store_true",
                    help="that final share also rounds activations as --numerics fast does (FP8 per 1x128, BF16)")
    ap.add_argument("--eval-every", type=int, default=0, help="steps between accuracy checks (0: about 10 per run)")
    ap.add_argument("--eval-problems", type=int, default=0, help="held-out problems per check (0: 12 on cpu, 96 on cuda)")
    ap.add_argument("--workers", type=int, default=-1, help="data worker processes (-1: 0 on cpu, 6 on cuda)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    global FP8_ACTIVATIONS
    FP8_ACTIVATIONS = args.fp8_activations

    start_time = time.time()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    batch = args.batch or (512 if args.device == "cuda" else 48)
    workers = args.workers if args.workers >= 0 else (6 if args.device == "cuda" else 0)
    tokenizer = demo_task.Tokenizer()

    if os.path.exists(os.path.join(args.out, "resume.pt")):
        model, state = load_model(args.out, device)
        resume = torch.load(os.path.join(args.out, "resume.pt"), map_location=device)
        print(f"resuming from step {state['step']} of {state['total_steps']}", flush=True)
    else:
        model, state, resume = DemoModel(CONFIG, used_token_ids(tokenizer)).to(device), None, None
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params / 1e6:.2f}M parameters, {len(model.used_ids)} used vocabulary rows of {VOCAB}, "
          f"batch {batch}, device {args.device}", flush=True)

    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.0)
    if resume:
        optimizer.load_state_dict(resume["optimizer"])
    step = state["step"] if state else 0
    total = state["total_steps"] if state else args.steps  # 0: decided after the speed is measured
    loader = torch.utils.data.DataLoader(Batches(model.used_ids.tolist(), batch, args.seed, step),
                                         batch_size=None, num_workers=workers)
    eval_rng = random.Random(f"held-out/{args.seed}")
    held_out = [demo_task.sample_eval_question(eval_rng) for _ in
                range(args.eval_problems or (96 if args.device == "cuda" else 12))]

    budget = args.minutes * 60
    tokens_seen, t_mark, tokens_mark = 0, time.time(), 0
    losses = []
    for rows, mask in loader:
        if total and step >= total:
            break
        if time.time() - start_time > budget:
            print("time budget reached", flush=True)
            break
        # Steps 10..30 (past start-up costs) measure the speed that fixes the schedule's length.
        if not total and step == 10:
            t10 = time.time()
        if not total and step == 30:
            per_step = (time.time() - t10) / 20
            left = 0.92 * (budget - (time.time() - start_time)) - 20  # evaluations and the final save
            total = step + max(1, int(left / per_step))
            print(f"{per_step * 1000:.0f} ms/step: schedule laid out over {total} steps "
                  f"(reproduce with --steps {total} --seed {args.seed})", flush=True)
        schedule_total = total or 10 ** 9
        quant = bool(total) and step >= total * (1 - args.quant_share)
        for g in optimizer.param_groups:
            g["lr"] = learning_rate(step, schedule_total, args.lr, warmup=min(300, max(20, schedule_total // 20)))
        rows, mask = rows.to(device, non_blocking=True), mask.to(device, non_blocking=True)
        loss = loss_fn(model, rows, mask, quant)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        update_routing_bias(model, rate=1e-3)
        step += 1
        tokens_seen += rows.numel()
        losses.append(loss.item() if step % 10 == 0 else None)
        eval_every = args.eval_every or max(50, (total or 2000) // 10)
        if step % 10 == 0:
            now = time.time()
            recent = [x for x in losses[-50:] if x is not None]
            print(f"step {step}/{total or '?'} loss {sum(recent) / len(recent):.4f} lr {optimizer.param_groups[0]['lr']:.2e}"
                  f"{' fp8' if quant else ''} {(tokens_seen - tokens_mark) / (now - t_mark):.0f} tok/s "
                  f"elapsed {now - start_time:.0f}s", flush=True)
            t_mark, tokens_mark = now, tokens_seen
        if step % eval_every == 0:
            model.eval()
            acc, sample = greedy_accuracy(model, tokenizer, held_out, device, quant)
            model.train()
            print(f"step {step} held-out greedy accuracy {acc * 100:.1f}% sample: {sample!r}", flush=True)
            t_mark, tokens_mark = time.time(), tokens_seen
            save(model, optimizer, {"step": step, "total_steps": total, "seed": args.seed}, args.out)

    save(model, optimizer, {"step": step, "total_steps": total, "seed": args.seed}, args.out)
    model.eval()
    acc, sample = greedy_accuracy(model, tokenizer, held_out, device, quant=True)
    print(f"final: step {step}, held-out greedy accuracy with export rounding {acc * 100:.1f}%, sample: {sample!r}", flush=True)
    size = os.path.getsize(os.path.join(args.out, "model.pt"))
    print(f"saved {args.out}/model.pt ({size / 1e6:.1f} MB) in {time.time() - start_time:.0f}s", flush=True)
    if size > 15e6:
        print("warning: model.pt is over 15 MB", flush=True)


if __name__ == "__main__":
    main()
