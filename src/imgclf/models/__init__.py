"""Models: tutorial recipes, custom stacks, timm backbones, heads, freezing, the ImageModel."""

from imgclf.models.network import ImageModel, build_model, model_from_spec
from imgclf.models.recipes import list_recipes, register_recipe

__all__ = ["ImageModel", "build_model", "list_recipes", "model_from_spec", "register_recipe"]
