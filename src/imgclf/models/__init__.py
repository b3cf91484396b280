"""Models: tutorial recipes, custom stacks, timm backbones, heads, freezing, the ImageModel and
its bundle on disk."""

from imgclf.models.bundle import load_bundle, read_bundle_json, save_bundle
from imgclf.models.network import ImageModel, build_model, model_from_spec
from imgclf.models.recipes import list_recipes, register_recipe

__all__ = [
    "ImageModel",
    "build_model",
    "list_recipes",
    "load_bundle",
    "model_from_spec",
    "read_bundle_json",
    "register_recipe",
    "save_bundle",
]
