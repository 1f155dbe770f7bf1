"""Closed-loop control with spiking policies: gymnasium environments, event encoders of the
observation, spiking actors trained by surrogate gradients (PPO) or converted from an ANN, and
policies that run on the event-driven engine one step per decision."""

from spikeflow.control.encoding import DenseInput, SendOnDelta, default_thresholds
from spikeflow.control.envs import make_env
from spikeflow.control.loop import LoopResult, run_loop
from spikeflow.control.policy import Policy, load_policy
from spikeflow.control.reflex import ReflexTask, compare_controllers
from spikeflow.control.toy import TargetTracking
from spikeflow.control.train import evaluate_policy, train_policy

__all__ = ["DenseInput", "LoopResult", "Policy", "ReflexTask", "SendOnDelta", "TargetTracking", "compare_controllers",
           "default_thresholds", "evaluate_policy", "load_policy", "make_env", "run_loop", "train_policy"]
