"""pycaffe's solver surface (after BVLC python/caffe/test/test_solver.py)."""
import os
import shutil
import tempfile
import unittest

import numpy as np

import layerforge.pycaffe as caffe
from tests.pycaffe.test_net import simple_net_file


class TestSolver(unittest.TestCase):
    def setUp(self):
        self.num_output = 13
        self.folder = tempfile.mkdtemp()
        net_file = simple_net_file(self.num_output)
        shutil.move(net_file, os.path.join(self.folder, "net.prototxt"))
        self.solver_file = os.path.join(self.folder, "solver.prototxt")
        with open(self.solver_file, "w") as f:
            f.write("""net: 'net.prototxt'
            test_iter: 10 test_interval: 10 base_lr: 0.01 momentum: 0.9
            weight_decay: 0.0005 lr_policy: 'inv' gamma: 0.0001 power: 0.75
            display: 100 max_iter: 100 snapshot_after_train: false
            snapshot_prefix: "%s/model" """ % self.folder)
        self.solver = caffe.SGDSolver(self.solver_file)
        caffe.get_solver(self.solver_file)
        caffe.set_mode_cpu()
        rng = np.random.default_rng(0)
        for net in [self.solver.net] + self.solver.test_nets:
            net.blobs["label"].data[...] = rng.integers(self.num_output, size=net.blobs["label"].shape)

    def tearDown(self):
        shutil.rmtree(self.folder)

    def test_solve(self):
        self.assertEqual(self.solver.iter, 0)
        self.solver.solve()
        self.assertEqual(self.solver.iter, 100)

    def test_step_learns(self):
        before = self.solver.net.forward()["loss"].item()
        self.solver.step(20)
        self.assertEqual(self.solver.iter, 20)
        self.assertLess(self.solver.net.forward()["loss"].item(), before)

    def test_apply_update(self):
        net = self.solver.net
        data = net.layers[1].blobs[0].data[...]
        data[...] = 0
        net.layers[1].blobs[0].diff[...] = 1
        self.solver.apply_update()         # initial learning rate 0.01, no history yet
        np.testing.assert_allclose(data, -0.01, rtol=1e-6)
        self.assertEqual(self.solver.iter, 0)

    def test_test_nets_share_weights(self):
        self.assertEqual(len(self.solver.test_nets), 1)
        self.assertIs(self.solver.test_nets[0].params["ip"][0], self.solver.net.params["ip"][0])

    def test_net_memory(self):
        """Nets and their arrays outlive the solver."""
        nets = [self.solver.net] + list(self.solver.test_nets)
        del self.solver
        total = 0
        for net in nets:
            total += sum(p.data.sum() + p.diff.sum() for ps in net.params.values() for p in ps)
            total += sum(b.data.sum() + b.diff.sum() for b in net.blobs.values())
        self.assertTrue(np.isfinite(total))

    def test_snapshot_and_restore(self):
        self.solver.step(3)
        self.solver.snapshot()
        for name in ("model_iter_3.caffemodel", "model_iter_3.solverstate"):
            self.assertTrue(os.path.isfile(os.path.join(self.folder, name)))
        weights = self.solver.net.params["ip"][0].data.copy()
        restored = caffe.SGDSolver(self.solver_file)
        restored.restore(os.path.join(self.folder, "model_iter_3.solverstate"))
        self.assertEqual(restored.iter, 3)
        np.testing.assert_array_equal(restored.net.params["ip"][0].data, weights)

    def test_callbacks(self):
        calls = []
        self.solver.add_callback(lambda: calls.append(("start", self.solver.iter)),
                                 lambda: calls.append(("gradients", self.solver.iter)))
        self.solver.step(2)
        self.assertEqual(calls, [("start", 0), ("gradients", 0), ("start", 1), ("gradients", 1)])

    def test_lr(self):
        self.assertAlmostEqual(self.solver.lr, 0.01)
        self.solver.step(10)
        self.assertAlmostEqual(self.solver.lr, 0.01 * (1 + 0.0001 * 10) ** -0.75)


class TestSolverTypes(unittest.TestCase):
    def test_get_solver_picks_the_type(self):
        folder = tempfile.mkdtemp()
        try:
            net_file = os.path.join(folder, "net.prototxt")
            shutil.move(simple_net_file(5), net_file)
            for type_name, cls in [("SGD", caffe.SGDSolver), ("Nesterov", caffe.NesterovSolver),
                                   ("AdaGrad", caffe.AdaGradSolver), ("RMSProp", caffe.RMSPropSolver),
                                   ("AdaDelta", caffe.AdaDeltaSolver), ("Adam", caffe.AdamSolver)]:
                path = os.path.join(folder, f"{type_name}.prototxt")
                momentum = "" if type_name in ("AdaGrad", "RMSProp") else "momentum: 0.9"
                with open(path, "w") as f:
                    f.write(f'net: "{net_file}" base_lr: 0.01 type: "{type_name}" {momentum} '
                            f'snapshot_prefix: "{folder}/m"')
                solver = caffe.get_solver(path)
                self.assertIs(type(solver), cls)
                self.assertIsInstance(solver, caffe.SGDSolver)
                self.assertIs(type(cls(path).layerforge_solver), type(solver.layerforge_solver))
        finally:
            shutil.rmtree(folder)
