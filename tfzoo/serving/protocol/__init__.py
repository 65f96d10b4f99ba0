"""TF Serving's wire formats, shared by the server (`tfzoo serve`) and the client.

- `status`: ServingError, TF Serving's status codes and their HTTP statuses.
- `tensor_proto`: numpy arrays <-> TensorProto, in typed fields (`float_val`, ...) or `tensor_content`.
- `json_arrays`: REST JSON without TensorFlow: reading a body, writing numpy arrays as TF Serving lays them out.
- `json_tensor`: the REST API's JSON <-> Predict/Classify/Regress request and response protos.
"""
