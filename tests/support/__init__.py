"""What the tests share besides fixtures: brokers, the API and checks harnesses, polling, the task guard's rules."""
