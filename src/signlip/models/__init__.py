"""Model zoo, one model per file. Each file registers its models in `signlip.registry.MODELS`;
add new files to `signlip.registry.MODEL_MODULES`.

Model contract: an `nn.Module` built from plain (JSON-able) kwargs that include `num_classes`;
`forward(x, mask=None) -> logits (B, num_classes)`.
"""
