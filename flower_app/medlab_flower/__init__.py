"""medlab's federated lesson as a Flower app (Message API, flwr 1.41)."""
