from rest_framework.routers import DefaultRouter

from notifications.api import views

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register(
    "notification-channels", views.ChannelViewSet, basename="notification-channel"
)
router.register(
    "notification-subscriptions",
    views.SubscriptionViewSet,
    basename="notification-subscription",
)
router.register(
    "notification-deliveries", views.DeliveryViewSet, basename="notification-delivery"
)

urlpatterns = router.urls
