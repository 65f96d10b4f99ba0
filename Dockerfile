# The training image that cluster/tfjob.yaml runs: tfzoo and its pinned dependencies on TensorFlow's own image.
# From the repository root (see cluster/README.md):
#
#   docker build -t REGISTRY/tfzoo:0.1.0 .                                   # CPU
#   docker build --build-arg VARIANT=-gpu -t REGISTRY/tfzoo:0.1.0-gpu .      # GPU (CUDA from the -gpu base image)
#
# TF_VERSION must be the TensorFlow that setup.py requires and cluster/requirements.txt pins (tests/test_cluster.py
# checks both); the base images ship Python 3.11, the Python the test suite runs on.
ARG TF_VERSION=2.21.0
ARG VARIANT=
FROM tensorflow/tensorflow:${TF_VERSION}${VARIANT}
ARG TF_VERSION

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The pins first, in their own layer: a code change then rebuilds only the small tfzoo layer below.
# pip leaves alone what the base image already holds at the pinned version (TensorFlow itself).
COPY cluster/requirements.txt /tmp/requirements.txt
RUN python3 -m pip install -r /tmp/requirements.txt && rm /tmp/requirements.txt

# tfzoo itself, without letting pip resolve anything the pins did not fix; `pip check` fails the build when the
# pins do not satisfy setup.py, and the import checks that the TensorFlow in the image is the one pinned.
COPY setup.py README.md /src/
COPY tfzoo /src/tfzoo
RUN python3 -m pip install --no-deps /src && rm -rf /src \
    && python3 -m pip check \
    && python3 -c "import tensorflow as tf; assert tf.__version__ == '${TF_VERSION}', tf.__version__" \
    && tfzoo list

# Not root. A numeric uid lets Kubernetes check runAsNonRoot, and the manifest's fsGroup makes the run volume
# writable for it; 10001 stays clear of the uid 1000 that some Ubuntu base images already use.
RUN useradd --create-home --uid 10001 --user-group tfzoo
USER 10001:10001
WORKDIR /home/tfzoo

ENTRYPOINT ["tfzoo"]
CMD ["--help"]
