"""`python -m jaxnin`: the recipes, what each is for, and the command that runs it."""
import sys

from jaxnin.recipes import RECIPES

TOOLS = (
    ("python -m jaxnin.experiments.predict RUN_DIR", "predict test images with a finished run"),
    ("python -m jaxnin.export_onnx RUN_DIR", "export a finished run's model to ONNX"),
    ("python -m jaxnin.summary MODEL", "a model's layers, shapes, params and FLOPs"),
)


def listing() -> str:
    lines = ["jaxnin recipes (in Python: jaxnin.recipe(NAME); every command takes --help):", ""]
    for name, recipe in RECIPES.items():
        lines += [f"  {name}", f"      {recipe.purpose}", f"      $ {recipe.command}"]
    lines += ["", "tools over finished runs:", ""]
    lines += [f"  $ {command}\n      {purpose}" for command, purpose in TOOLS]
    return "\n".join(lines)


if __name__ == "__main__":
    print(listing())
    sys.exit(0)
