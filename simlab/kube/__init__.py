"""A minimal Kubernetes API for KubeRay ``RayJob`` objects that runs the jobs on the lab's Ray head."""

from simlab.kube.app import KubeApp

__all__ = ["KubeApp"]
