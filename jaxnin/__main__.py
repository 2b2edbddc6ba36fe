"""`python -m jaxnin`: the recipes, what each is for, and the command that runs it."""
import argparse
import sys

from jaxnin.cli import ArgumentParser, run_main
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


def main(argv) -> int:
    # No options: a flag typed here is refused in one line rather than ignored.
    ArgumentParser(prog="python -m jaxnin", description=listing(),
                   formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    print(listing())
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
