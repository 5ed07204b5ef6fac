#!/usr/bin/python3
"""Writes tiny random checkpoints of the DeepSeek family, one per configuration the engine must
handle, in the exact Hugging Face layout (config.json, generation_config.json, safetensors shards
+ model.safetensors.index.json or a single model.safetensors), and golden.safetensors with
teacher-forced logits from tools/reference_model.py (`tokens_i` I32 [T], `logits_i` F32 [T, vocab]).

    /usr/bin/python3 tools/make_family_fixtures.py --out tests/data/family [--case NAME ...]

Deterministic: the same command writes the same bytes. Not part of the test run; the tests read
the committed output.
"""
import argparse
import json
import math
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_model import E4M3FN, Model, is_moe_layer, write_safetensors  # noqa: E402

PROMPT_LENGTHS = (1, 6, 40)
MIN_ROUTING_MARGIN = 1e-4  # closer decisions could flip on float32 rounding alone
YARN_V2 = {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
           "beta_fast": 32, "beta_slow": 1, "mscale": 0.707, "mscale_all_dim": 0.707}
YARN_V3 = dict(YARN_V2, mscale=1.0, mscale_all_dim=1.0)
FP8 = {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
       "weight_block_size": [128, 128]}


def v2_config(**fields):
    config = {
        "architectures": ["DeepseekV2ForCausalLM"], "model_type": "deepseek_v2",
        "vocab_size": 512, "hidden_size": 128, "intermediate_size": 320,
        "moe_intermediate_size": 48, "num_hidden_layers": 3, "first_k_dense_replace": 1,
        "moe_layer_freq": 1, "num_attention_heads": 4, "num_key_value_heads": 4,
        "n_routed_experts": 8, "n_shared_experts": 2, "num_experts_per_tok": 2, "n_group": 1,
        "topk_group": 1, "routed_scaling_factor": 1.0, "scoring_func": "softmax",
        "topk_method": "greedy", "norm_topk_prob": False, "q_lora_rank": None,
        "kv_lora_rank": 64, "qk_nope_head_dim": 32, "qk_rope_head_dim": 16, "v_head_dim": 32,
        "rope_theta": 10000.0, "max_position_embeddings": 163840, "rope_scaling": YARN_V2,
        "rms_norm_eps": 1e-6, "hidden_act": "silu", "tie_word_embeddings": False,
        "aux_loss_alpha": 0.001, "seq_aux": True, "ep_size": 1, "initializer_range": 0.02,
        "attention_dropout": 0.0, "use_cache": True, "bos_token_id": 0, "eos_token_id": 1,
        "torch_dtype": "bfloat16", "attention_bias": False,
    }
    config.update(fields)
    return config


def v3_config(**fields):
    config = v2_config(
        architectures=["DeepseekV3ForCausalLM"], model_type="deepseek_v3", n_routed_experts=8,
        n_shared_experts=1, num_experts_per_tok=2, n_group=4, topk_group=2,
        routed_scaling_factor=2.5, scoring_func="sigmoid", topk_method="noaux_tc",
        norm_topk_prob=True, q_lora_rank=64, rope_scaling=YARN_V3, num_nextn_predict_layers=0)
    for v2_only in ("aux_loss_alpha", "seq_aux", "initializer_range"):
        del config[v2_only]
    config.update(fields)
    return config


# name -> (config, number of shards: 1 writes a single model.safetensors without index)
CASES = {
    "tiny-v2-greedy": (v2_config(
        vocab_size=640, routed_scaling_factor=4.0), 1),
    "tiny-v2-group-limited": (v2_config(
        num_hidden_layers=2, first_k_dense_replace=0, q_lora_rank=64, moe_intermediate_size=32,
        n_routed_experts=16, n_shared_experts=1, num_experts_per_tok=3, n_group=4, topk_group=2,
        topk_method="group_limited_greedy", norm_topk_prob=True, routed_scaling_factor=1.5), 2),
    "tiny-v3-odd": (v3_config(
        vocab_size=300, hidden_size=200, intermediate_size=333, moe_intermediate_size=72,
        q_lora_rank=100, kv_lora_rank=72, qk_nope_head_dim=24, qk_rope_head_dim=8, v_head_dim=20,
        num_hidden_layers=5, first_k_dense_replace=2, n_shared_experts=2, num_attention_heads=3,
        num_key_value_heads=3, num_experts_per_tok=3, quantization_config=FP8), 3),
    "tiny-v3-plain-rope": (v3_config(
        rope_scaling=None, rope_theta=50000.0, n_shared_experts=0, n_group=2, topk_group=1,
        q_lora_rank=48), 2),
    "tiny-v3-mscale": (v3_config(
        num_hidden_layers=4, moe_layer_freq=2,
        rope_scaling={"rope_type": "yarn", "factor": 8, "original_max_position_embeddings": 1024,
                      "beta_fast": 16, "beta_slow": 2, "mscale": 1.0, "mscale_all_dim": 0.5}), 2),
    "tiny-v3-mtp": (v3_config(
        num_hidden_layers=2, num_nextn_predict_layers=1, n_group=1, topk_group=1,
        quantization_config=FP8), 2),
}


# ---------------------------------------------------------------------------------------------
# Tensor encoding.

def bf16_bytes(x):
    return x.to(torch.bfloat16).view(torch.int16).numpy().tobytes()


def f32_bytes(x):
    return x.float().contiguous().numpy().tobytes()


def e4m3fn_codes(x):
    """Nearest e4m3fn code of every value of x (|x| <= 448)."""
    magnitudes = E4M3FN[:127]  # codes 0x00..0x7E: every finite non-negative value, ascending
    upper = torch.searchsorted(magnitudes, x.abs().contiguous()).clamp(1, 126)
    lower = upper - 1
    nearer_lower = (x.abs() - magnitudes[lower]) <= (magnitudes[upper] - x.abs())
    codes = torch.where(nearer_lower, lower, upper)
    return (codes | (x < 0).long() * 0x80).to(torch.uint8)


class WeightWriter:
    """Random tensors under their Hugging Face names, stored BF16 or FP8 like a release."""

    def __init__(self, config, seed):
        self.gen = torch.Generator().manual_seed(seed)
        self.fp8 = "quantization_config" in config
        self.block = FP8["weight_block_size"][0]
        self.tensors = []  # (name, dtype, shape, bytes)

    def normal(self, *shape, std=1.0):
        return torch.randn(*shape, generator=self.gen) * std

    def vector(self, name, size, mean, std):
        self.tensors.append((name, "BF16", [size], bf16_bytes(mean + self.normal(size, std=std))))

    def norm(self, name, size):
        self.vector(name, size, 1.0, 0.1)

    def bf16_matrix(self, name, out_dim, in_dim, std):
        self.tensors.append((name, "BF16", [out_dim, in_dim], bf16_bytes(self.normal(out_dim, in_dim, std=std))))

    def linear(self, prefix, out_dim, in_dim):
        """std 1/sqrt(in) keeps activations O(1). In FP8, every 128×128 block gets its own
        magnitude (×0.5..2), so a scale applied to the wrong block shows."""
        w = self.normal(out_dim, in_dim, std=in_dim ** -0.5)
        if not self.fp8:
            self.tensors.append((prefix + ".weight", "BF16", [out_dim, in_dim], bf16_bytes(w)))
            return
        b = self.block
        rows, cols = math.ceil(out_dim / b), math.ceil(in_dim / b)
        magnitude = 2.0 ** (torch.rand(rows, cols, generator=self.gen) * 2 - 1)
        w = w * magnitude.repeat_interleave(b, 0)[:out_dim].repeat_interleave(b, 1)[:, :in_dim]
        scale_inv = torch.zeros(rows, cols)
        codes = torch.zeros(out_dim, in_dim, dtype=torch.uint8)
        for r in range(rows):
            for c in range(cols):
                block = w[r * b:(r + 1) * b, c * b:(c + 1) * b]
                scale_inv[r, c] = block.abs().max() / 448.0
                codes[r * b:(r + 1) * b, c * b:(c + 1) * b] = e4m3fn_codes(block / scale_inv[r, c])
        self.tensors.append((prefix + ".weight", "F8_E4M3", [out_dim, in_dim], codes.numpy().tobytes()))
        self.tensors.append((prefix + ".weight_scale_inv", "F32", [rows, cols], f32_bytes(scale_inv)))

    def mlp(self, prefix, hidden, width):
        self.linear(prefix + ".gate_proj", width, hidden)
        self.linear(prefix + ".up_proj", width, hidden)
        self.linear(prefix + ".down_proj", hidden, width)


def write_layer(w, c, index, moe):
    p = f"model.layers.{index}."
    hidden, heads = c["hidden_size"], c["num_attention_heads"]
    qk_dim = c["qk_nope_head_dim"] + c["qk_rope_head_dim"]
    w.norm(p + "input_layernorm.weight", hidden)
    w.norm(p + "post_attention_layernorm.weight", hidden)
    if c["q_lora_rank"]:
        w.linear(p + "self_attn.q_a_proj", c["q_lora_rank"], hidden)
        w.norm(p + "self_attn.q_a_layernorm.weight", c["q_lora_rank"])
        w.linear(p + "self_attn.q_b_proj", heads * qk_dim, c["q_lora_rank"])
    else:
        w.linear(p + "self_attn.q_proj", heads * qk_dim, hidden)
    w.linear(p + "self_attn.kv_a_proj_with_mqa", c["kv_lora_rank"] + c["qk_rope_head_dim"], hidden)
    w.norm(p + "self_attn.kv_a_layernorm.weight", c["kv_lora_rank"])
    w.linear(p + "self_attn.kv_b_proj", heads * (c["qk_nope_head_dim"] + c["v_head_dim"]), c["kv_lora_rank"])
    w.linear(p + "self_attn.o_proj", hidden, heads * c["v_head_dim"])
    if not moe:
        w.mlp(p + "mlp", hidden, c["intermediate_size"])
        return
    experts = c["n_routed_experts"]
    # A router twice as sharp as the other linears: decisive, never all ties.
    w.bf16_matrix(p + "mlp.gate.weight", experts, hidden, std=2 * hidden ** -0.5)
    if c["topk_method"] == "noaux_tc":
        w.tensors.append((p + "mlp.gate.e_score_correction_bias", "F32", [experts],
                          f32_bytes(w.normal(experts, std=0.05))))
    for e in range(experts):
        w.mlp(f"{p}mlp.experts.{e}", hidden, c["moe_intermediate_size"])
    if c.get("n_shared_experts"):
        w.mlp(p + "mlp.shared_experts", hidden, c["n_shared_experts"] * c["moe_intermediate_size"])


def write_mtp_extras(w, c, index):
    """The multi-token-prediction module's own tensors (R1 layout); the decoder layer is written
    by write_layer. The plain forward pass must skip all of them."""
    p, hidden, vocab = f"model.layers.{index}.", c["hidden_size"], c["vocab_size"]
    w.norm(p + "enorm.weight", hidden)
    w.norm(p + "hnorm.weight", hidden)
    w.linear(p + "eh_proj", hidden, 2 * hidden)
    w.norm(p + "shared_head.norm.weight", hidden)
    w.bf16_matrix(p + "shared_head.head.weight", vocab, hidden, std=3 * hidden ** -0.5)
    w.bf16_matrix(p + "embed_tokens.weight", vocab, hidden, std=1.0)


def random_weights(c, seed):
    w = WeightWriter(c, seed)
    w.bf16_matrix("model.embed_tokens.weight", c["vocab_size"], c["hidden_size"], std=1.0)
    layers = c["num_hidden_layers"] + c.get("num_nextn_predict_layers", 0)
    for i in range(layers):
        write_layer(w, c, i, is_moe_layer(c, i) or i >= c["num_hidden_layers"])
        if i >= c["num_hidden_layers"]:
            write_mtp_extras(w, c, i)
    w.norm("model.norm.weight", c["hidden_size"])
    # A wide lm_head spreads the logits: their std per position is well above 1.
    w.bf16_matrix("lm_head.weight", c["vocab_size"], c["hidden_size"], std=3 * c["hidden_size"] ** -0.5)
    return w.tensors


# ---------------------------------------------------------------------------------------------
# Writing a model directory.

def write_checkpoint(out_dir, config, tensors, shards):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    generation = {"bos_token_id": config["bos_token_id"], "eos_token_id": config["eos_token_id"],
                  "do_sample": True, "temperature": 0.6, "top_p": 0.95}
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump(generation, f, indent=2)
        f.write("\n")
    if shards == 1:
        write_safetensors(os.path.join(out_dir, "model.safetensors"), tensors, {"format": "pt"})
        return
    # Consecutive tensors fill each shard to about total/shards bytes, as save_pretrained does.
    total = sum(len(t[3]) for t in tensors)
    groups, current, size = [], [], 0
    for t in tensors:
        if current and size + len(t[3]) > total / shards * (len(groups) + 1) and len(groups) < shards - 1:
            groups.append(current)
            current = []
        current.append(t)
        size += len(t[3])
    groups.append(current)
    weight_map = {}
    for i, group in enumerate(groups):
        name = f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors"
        write_safetensors(os.path.join(out_dir, name), group, {"format": "pt"})
        weight_map.update({t[0]: name for t in group})
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")


def make_case(out_root, name, config, shards):
    """Retries seeds until no routing decision is within MIN_ROUTING_MARGIN of a tie."""
    out_dir = os.path.join(out_root, name)
    for seed in range(1000, 1100):
        shutil.rmtree(out_dir, ignore_errors=True)
        write_checkpoint(out_dir, config, random_weights(config, seed), shards)
        gen = torch.Generator().manual_seed(seed)
        prompts = [torch.randint(0, config["vocab_size"], (n,), generator=gen, dtype=torch.int32)
                   for n in PROMPT_LENGTHS]
        model = Model(out_dir)
        logits = [model.forward(tokens) for tokens in prompts]
        margin = min(model.routing_margins, default=math.inf)
        if margin >= MIN_ROUTING_MARGIN:
            break
        print(f"{name}: seed {seed} routes within {margin:.1e} of a tie, trying the next")
    golden = []
    for i, (tokens, prompt_logits) in enumerate(zip(prompts, logits)):
        golden.append((f"tokens_{i}", "I32", [len(tokens)], tokens.numpy().tobytes()))
        golden.append((f"logits_{i}", "F32", list(prompt_logits.shape), f32_bytes(prompt_logits)))
    smallest_std = min(l.std(dim=-1, unbiased=False).min().item() for l in logits)
    write_safetensors(os.path.join(out_dir, "golden.safetensors"), golden,
                      {"reference": "tools/reference_model.py, naive-form MLA, float32, CPU"})
    size = sum(os.path.getsize(os.path.join(out_dir, f)) for f in os.listdir(out_dir))
    print(f"{name}: seed {seed}, {size / 1e6:.2f} MB, routing margin {margin:.1e}, "
          f"smallest logit std {smallest_std:.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="default: all")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with torch.no_grad():
        for name in args.case or CASES:
            config, shards = CASES[name]
            make_case(args.out, name, config, shards)
    return 0


if __name__ == "__main__":
    sys.exit(main())
