"""earlyphase.compare"""
