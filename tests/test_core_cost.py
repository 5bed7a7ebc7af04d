from earlyphase.core.cost import Cost


def test_costs_add_field_by_field():
    total = Cost(hvps=3, gradients=1, forwards=2, seconds=0.5) + Cost(hvps=1, forwards=4, seconds=0.25)
    assert total == Cost(hvps=4, gradients=1, forwards=6, seconds=0.75)
    assert total.as_dict() == {"hvps": 4, "gradients": 1, "forwards": 6, "seconds": 0.75}
