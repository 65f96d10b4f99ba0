"""TF Serving's wire formats, shared by the server (`tfzoo serve`) and the client.

- `status`: ServingError, TF Serving's status codes and their HTTP statuses.
- `tensor_proto`: numpy arrays <-> TensorProto, in typed fields (`float_val`, ...) or `tensor_content`.
- `rapidjson`: JSON read and written as TF Serving's rapidjson does (number types, errors, layout, digits).
- `json_tensor`: the REST API's JSON <-> Predict/Classify/Regress request and response protos.
"""
