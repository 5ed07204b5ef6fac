#!/usr/bin/python3
"""How far FP8 activations move a model's logits, independently of r1's kernels: the naive torch
port (tools/reference_model.py) run twice over the demo model's trainer sequences, once exact and
once with every input of an FP8-weight projection rounded as the CUDA fast path rounds it (e4m3
per 1x128 block, scale amax/448; batches of more than 32 rows; kv_b is applied absorbed, in
float32, and stays exact), then the per-position cosine between the two.

    /usr/bin/python3 tools/fp8_activation_drift.py [MODEL_DIR]

On models/r1-demo (2026-11-23) it prints a worst cosine of 0.961 / 0.914 / 0.955 for the three
sequences: what the GPU's fast prefill shows (0.961 / 0.916 / 0.979), so that drift is the
demo model's sensitivity to FP8 activations, not an error of the kernels.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_model as rm  # noqa: E402
from train_demo_model import fp8_activation_round  # noqa: E402  (the trainer's --fp8-activations rounding)

GEMM_MIN_ROWS = 33  # the CUDA backend's FP8 GEMM takes batches above kGemvMaxRows (32)


class Fp8ActivationModel(rm.Model):
    def linear(self, prefix, x):
        fp8_weight = self.ckpt.has(prefix + ".weight_scale_inv") and not prefix.endswith("kv_b_proj")
        if fp8_weight and x.shape[0] >= GEMM_MIN_ROWS:
            x = fp8_activation_round(x)
        return super().linear(prefix, x)


def main():
    model_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "models", "r1-demo")
    refs, _ = rm.read_safetensors(os.path.join(model_dir, "trainer_logits.safetensors"))
    exact, fast = rm.Model(model_dir), Fp8ActivationModel(model_dir)
    for i in range(len(refs)):
        if f"tokens_{i}" not in refs:
            break
        tokens = [int(t) for t in rm.to_tensor(*refs[f"tokens_{i}"]).flatten()]
        with torch.no_grad():
            cos = torch.nn.functional.cosine_similarity(exact.forward(tokens).double(), fast.forward(tokens).double(), dim=-1)
        print(f"sequence {i} ({len(tokens)} tokens): worst cosine {cos.min().item():.4f}, mean {cos.mean().item():.5f}")


if __name__ == "__main__":
    main()
