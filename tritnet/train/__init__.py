"""Training loops (one readable function per task) and the run folders they write."""
from .classifier import ClassifierTrainConfig, load_classifier, train_classifier
from .distill import DistillConfig
