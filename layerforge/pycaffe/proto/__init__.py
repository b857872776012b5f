"""pycaffe's caffe.proto: `caffe_pb2` is layerforge's schema, which keeps Caffe's messages."""
