"""Every registered model passes the same checks, derived from its spec and its task (see tests/model_checks.py)."""
import pytest
from model_checks import check_registered_model

import tfzoo

pytestmark = pytest.mark.slow  # each model trains, and its export validates in a new process


@pytest.mark.parametrize("name", tfzoo.list_models())
def test_registered_model_passes_the_model_checks(name, tmp_path):
    check_registered_model(name, tmp_path)
