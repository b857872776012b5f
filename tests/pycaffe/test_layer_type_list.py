"""caffe.layer_type_list() (after BVLC's test_layer_type_list.py)."""
import unittest

import layerforge.pycaffe as caffe


class TestLayerTypeList(unittest.TestCase):
    def test_standard_types(self):
        for type_name in ["Data", "Convolution", "InnerProduct", "Python"]:
            self.assertIn(type_name, caffe.layer_type_list(), f"{type_name} not in layer_type_list()")

    def test_sorted_and_unique(self):
        types = caffe.layer_type_list()
        self.assertEqual(types, sorted(set(types)))
