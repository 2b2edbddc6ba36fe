"""A recipe command's default workdir name: its seed's name for the recipe's own commands, and
a token for each value that changes what is trained, so that another run gets its own folder."""
import pytest

from jaxnin.experiments import fashion_nin, fashion_vgg, mnist_lenet, video_nin


def name(command, argv, in_channels=1, classes=10):
    args = command.parser().parse_args(argv)
    return command.workdir_name(command.config(args), command.reference(args), in_channels,
                                classes)


@pytest.mark.parametrize("command, argv, today", [
    (fashion_nin.RECIPE, [], "NiN_in1_out10_lr0.1_ep10"),
    (fashion_nin.RECIPE, ["--cpu"], "NiN_in1_out10_lr0.001_ep3"),
    (mnist_lenet.RECIPE, [], "LeNet5_in1_out10_lr0.001_ep50"),
    (mnist_lenet.RECIPE, ["--steplr"], "LeNet5_in1_out10_lr0.001_ep50_step"),
    (mnist_lenet.RECIPE, ["--tuned"], "LeNet5_in1_out10_lr0.002_ep20_cosine"),
    (fashion_vgg.RECIPE, ["--config", "B"], "VGG13_in1_out10_lr0.001_ep3"),
    (video_nin.RECIPE, [], "NiN_input_channels1_output_channels10_lr0.001_epochs300"),
    # What the name shows already, and what does not change what is trained, adds nothing.
    (fashion_nin.RECIPE, ["--lr", "0.2", "--epochs", "3", "--data-dir", "/d", "--seeds", "3",
                          "--eval-batch-size", "50", "--num-1x1", "2", "--shard-params"],
     "NiN_in1_out10_lr0.2_ep3_seeds3"),
])
def test_todays_commands_keep_their_names(command, argv, today):
    assert name(command, argv) == today


def test_each_value_that_changes_the_training_is_named_sorted_by_key():
    assert name(fashion_nin.RECIPE, ["--resize", "96", "--optimizer", "adam"]) == (
        "NiN_in1_out10_lr0.1_ep10_optimizer-adam_resize-96")
    assert name(fashion_nin.RECIPE, ["--num-1x1", "1", "--dtype", "bfloat16", "--resize", "0",
                                     "--clip-norm", "1", "--seeds", "2"]) == (
        "NiN_in1_out10_lr0.1_ep10_clip-norm-1_dtype-bfloat16_num-1x1-1_resize-none_seeds2")
    # From the chosen variant, not from the recipe.
    assert name(mnist_lenet.RECIPE, ["--tuned", "--batch-size", "16"]) == (
        "LeNet5_in1_out10_lr0.002_ep20_cosine_batch-size-16")
    assert name(video_nin.RECIPE, ["--frames", "4", "--size", "67", "--limit-train", "8"], 4) == (
        "NiN_input_channels4_output_channels10_lr0.001_epochs300_limit-train-8_size-67")
