"""Small shared helpers: argument checks, crash-safe file writes, progress bars, lazy
package exports. Nothing here imports TensorFlow."""
