"""raygen: distributed sweeps of generative models on Ray Tune."""
