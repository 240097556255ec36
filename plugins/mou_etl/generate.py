"""Sample feed generator (being written)."""


def add_parser(sub):
    p = sub.add_parser("generate", help="write sample deliveries for all MoU states")
    p.set_defaults(func=lambda args: 1)
