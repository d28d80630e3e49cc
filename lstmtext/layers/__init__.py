"""Custom Keras layers, registered for serialization under the "lstmtext" package."""
