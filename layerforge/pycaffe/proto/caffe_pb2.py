"""caffe_pb2 as pycaffe imports it: the messages of layerforge's schema (Caffe's names and numbers)."""
from layerforge.proto.layerforge_pb2 import *  # noqa: F401,F403
from layerforge.proto.layerforge_pb2 import DESCRIPTOR  # noqa: F401
