"""Tasks by name: each is one module owning what follows from what a model predicts (see tfzoo.tasks.base).

A new task is one new module with a `Task` subclass, registered with `register_task`. The language model's task
lives with the text bundle (tfzoo.text.task) and registers when tfzoo.text is imported (`import tfzoo` does).
"""
from __future__ import annotations

from tfzoo.tasks.base import PredictionTask, Request, Task
from tfzoo.tasks.binary import BinaryClassification
from tfzoo.tasks.multiclass import MulticlassClassification
from tfzoo.tasks.registry import classification_task, get_task, list_tasks, register_task
from tfzoo.tasks.regression import Regression

__all__ = ["PredictionTask", "Request", "Task", "classification_task", "get_task", "list_tasks", "register_task"]

register_task(Regression())
register_task(BinaryClassification())
register_task(MulticlassClassification())
