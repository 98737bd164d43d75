"""The example's routes."""

from django.urls import path
from whatsapp import views

urlpatterns = [
    path("tenants/<str:tenant_id>", views.connect),
    path("tenants/<str:tenant_id>/messages", views.send),
    path("inbox", views.inbox),
]
