"""benchmarks/omniglot_folds.py points the recipe at each fold's data and characters."""
import importlib.util
import os
import pathlib
import re
import subprocess

import pytest

from layerforge import io
from layerforge.proto import layerforge_pb2 as pb

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load_script():
    spec = importlib.util.spec_from_file_location("omniglot_folds", ROOT / "benchmarks" / "omniglot_folds.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("recipe", ["omniglot_siamese_solver.prototxt", "omniglot_triplet_solver.prototxt"])
def test_fold_solver_reads_the_fold_data_and_classifies_its_characters(tmp_path, recipe):
    folds = load_script()
    path, weights = folds.fold_files(str(tmp_path), "/d/train_lmdb", "/d/val_lmdb", classes=178, iters=40,
                                     solver_path=str(ROOT / "solvers" / recipe))
    solver = io.read_solver(path)
    sources = {rule.phase: layer.data_param.source
               for layer in solver.net_param.layer if layer.type == "Data" for rule in layer.include}
    assert sources == {pb.TRAIN: "/d/train_lmdb", pb.TEST: "/d/val_lmdb"}
    classifier, = (layer for layer in solver.net_param.layer if layer.name == "classifier")
    assert classifier.inner_product_param.num_output == 178
    assert (solver.max_iter, list(solver.stepvalue), solver.snapshot) == (40, [30], 40)
    assert weights == str(tmp_path / "omniglot_iter_40.caffemodel")


def test_folds_hold_out_every_background_alphabet_once_the_first_as_make_omniglot():
    folds = load_script()
    makefile = dict(re.findall(r"^(OMNIGLOT_TRAIN|OMNIGLOT_HELD_OUT) := (.*)$", (ROOT / "Makefile").read_text(),
                               re.MULTILINE))
    held_out = makefile["OMNIGLOT_HELD_OUT"].split(",")
    assert list(folds.FOLDS[0]) == held_out
    assert sorted(folds.ALPHABETS) == sorted(makefile["OMNIGLOT_TRAIN"].split(",") + held_out)


def test_recipe_on_all_alphabets_keeps_only_its_training_data_and_tests_nothing(tmp_path):
    folds = load_script()
    path, _ = folds.fold_files(str(tmp_path), "/d/train_lmdb", None, classes=242, iters=40)
    solver = io.read_solver(path)
    data = [layer for layer in solver.net_param.layer if layer.type == "Data"]
    assert [(layer.data_param.source, layer.include[0].phase) for layer in data] == [("/d/train_lmdb", pb.TRAIN)]
    assert (list(solver.test_iter), solver.test_interval) == ([], 0)
    classifier, = (layer for layer in solver.net_param.layer if layer.name == "classifier")
    assert classifier.inner_product_param.num_output == 242


@pytest.mark.parametrize("recipe", ["omniglot_siamese_solver.prototxt", "omniglot_triplet_solver.prototxt"])
def test_data_is_built_at_the_size_the_recipe_and_its_deploy_net_take(recipe):
    folds = load_script()
    size = folds.input_size(io.read_net(io.read_solver(ROOT / "solvers" / recipe).net))
    deploy = io.read_net(folds.DEPLOY)
    assert tuple(deploy.layer[0].input_param.shape[0].dim[2:]) == size
    dry_run = subprocess.run(["make", "-n", "omniglot", f"OMNIGLOT_SOLVER=solvers/{recipe}"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout
    assert dry_run.count(f"--resize {size[0]}x{size[1]} ") == 2


def dry_run(target):
    return subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True, check=True,
                          env={**os.environ, "LAYERFORGE_OMNIGLOT": "zips"}).stdout


ENSEMBLE = ["solvers/omniglot_ensemble_siamese_solver.prototxt", "solvers/omniglot_ensemble_triplet_solver.prototxt"]


def test_make_omniglot_ensemble_trains_both_recipes_on_one_data_and_scores_them_together():
    commands = dry_run("omniglot-ensemble")
    assert commands.count("layerforge data omniglot ") == 2
    trained = re.findall(r"layerforge train --solver (\S+?);", commands)
    assert trained == ENSEMBLE
    finals = []
    for path in trained:
        solver = io.read_solver(ROOT / path)
        final = f"{solver.snapshot_prefix}_final.caffemodel"
        assert f"cp {solver.snapshot_prefix}_iter_{solver.max_iter}.caffemodel {final}" in commands
        finals.append(final)
    deploy = "layerforge oneshot --model prototxt/omniglot_siamese_deploy.prototxt "
    scored = re.findall(deploy + r"((?:--weights \S+ )+)", commands)
    one, two = (f"--weights {final} " for final in finals)
    assert scored == [one, two, one + two]


def test_the_ensemble_is_the_two_recipes_for_fewer_iterations():
    """Each ensemble solver is its recipe's solver with max_iter and the step scaled together."""
    for ensemble, recipe in zip(ENSEMBLE, ["solvers/omniglot_siamese_solver.prototxt",
                                           "solvers/omniglot_triplet_solver.prototxt"]):
        short, full = io.read_solver(ROOT / ensemble), io.read_solver(ROOT / recipe)
        assert short.stepvalue[0] * 4 == short.max_iter * 3 and short.max_iter < full.max_iter
        for solver in (short, full):
            for field in ("max_iter", "stepvalue", "snapshot_prefix"):
                solver.ClearField(field)
        assert short == full


def test_make_omniglot_ensemble_all_trains_both_on_every_alphabet_and_names_their_weights(tmp_path):
    commands = dry_run("omniglot-ensemble-all")
    runs = re.findall(r"omniglot_folds.py --all --solver (\S+) --iters (\d+) --out (\S+?);", commands)
    assert [solver for solver, _, _ in runs] == ENSEMBLE
    folds = load_script()
    weights = []
    for solver, iters, out in runs:
        _, trained = folds.fold_files(str(tmp_path), "/d/train_lmdb", None, 242, int(iters), str(ROOT / solver))
        weights.append(out + trained[len(str(tmp_path)):])
    assert " ".join(f"--weights {w}" for w in weights) + " --runs DIR" in commands
