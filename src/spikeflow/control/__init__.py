"""Closed-loop control with spiking policies: gymnasium environments, event encoders of the
observation, spiking actors trained by surrogate gradients (PPO) or converted from an ANN, and
policies that run on the event-driven engine one step per decision."""
