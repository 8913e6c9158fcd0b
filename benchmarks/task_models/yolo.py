"""A tiny anchor-free YOLO-style detector: one stride-8 grid; output [batch, cells, 4 + classes], boxes
cx, cy, w, h in input pixels, class scores after a sigmoid (YOLOv8's head without the DFL)."""

import torch
from torch import nn

SIDE, STRIDE, CLASSES = 64, 8, 3


def block(cin, cout, stride):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.SiLU())


class TinyYolo(nn.Module):
    bmsdk_spec = {
        "task": "object-detection",
        "input_shapes": {"images": [1, 3, SIDE, SIDE]},
        "labels": ["rectangle", "disc", "triangle"],
        "name": "tiny-yolo",
    }

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            block(3, 16, 2), block(16, 32, 2), block(32, 32, 1), block(32, 48, 2), block(48, 48, 1)
        )
        self.box = nn.Conv2d(48, 4, 1)
        self.cls = nn.Conv2d(48, CLASSES, 1)
        cells = SIDE // STRIDE
        gy, gx = torch.meshgrid(torch.arange(cells), torch.arange(cells), indexing="ij")
        self.register_buffer("grid", torch.stack([gx, gy], -1).reshape(1, -1, 2).float() + 0.5)

    def raw(self, images):
        x = self.body(images)
        box = self.box(x).flatten(2).transpose(1, 2)  # [batch, cells, 4]
        cls = self.cls(x).flatten(2).transpose(1, 2)  # [batch, cells, classes] logits
        centre = (self.grid + torch.tanh(box[..., :2])) * STRIDE
        size = torch.exp(box[..., 2:].clamp(-4, 4)) * (2 * STRIDE)
        return torch.cat([centre, size], -1), cls

    def forward(self, images):
        boxes, cls = self.raw(images)
        return torch.cat([boxes, cls.sigmoid()], -1)


def make_model():
    return TinyYolo()
